// The few building blocks every screen uses. Text scales with the
// system's font size (allowFontScaling is on by default); every control
// has an accessibility label and role.
import type { ReactNode } from 'react';
import {
  ActivityIndicator,
  Pressable,
  StyleSheet,
  Text,
  TextInput,
  View,
  type TextInputProps,
  type ViewStyle,
} from 'react-native';

export const colors = {
  bg: '#ffffff',
  text: '#1b1f24',
  muted: '#5b636e',
  line: '#e3e6ea',
  primary: '#1f6feb',
  danger: '#cf222e',
  ok: '#1a7f37',
  bubbleMine: '#1f6feb',
  bubbleTheirs: '#eef1f4',
  dark: '#0d1117',
};

export function Screen({ children, style }: { children: ReactNode; style?: ViewStyle }) {
  return <View style={[styles.screen, style]}>{children}</View>;
}

export function Title({ children }: { children: ReactNode }) {
  return (
    <Text style={styles.title} accessibilityRole="header">
      {children}
    </Text>
  );
}

export function Body({ children, muted }: { children: ReactNode; muted?: boolean }) {
  return <Text style={[styles.body, styles.paragraph, muted && styles.muted]}>{children}</Text>;
}

export function ErrorText({ children }: { children: ReactNode }) {
  if (!children) return null;
  return (
    <Text style={styles.error} accessibilityRole="alert" accessibilityLiveRegion="polite">
      {children}
    </Text>
  );
}

interface ButtonProps {
  title: string;
  onPress: () => void;
  label?: string;
  kind?: 'primary' | 'plain' | 'danger' | 'ok';
  disabled?: boolean;
  busy?: boolean;
  testID?: string;
  style?: ViewStyle;
}

export function Button({ title, onPress, label, kind = 'primary', disabled, busy, testID, style }: ButtonProps) {
  const off = disabled || busy;
  return (
    <Pressable
      accessibilityRole="button"
      accessibilityLabel={label ?? title}
      accessibilityState={{ disabled: !!off, busy: !!busy }}
      disabled={off}
      onPress={onPress}
      testID={testID}
      style={({ pressed }) => [
        styles.button,
        kind === 'plain' && styles.buttonPlain,
        kind === 'danger' && styles.buttonDanger,
        kind === 'ok' && styles.buttonOk,
        off && styles.buttonOff,
        pressed && styles.pressed,
        style,
      ]}
    >
      {busy ? (
        <ActivityIndicator color={kind === 'plain' ? colors.primary : '#fff'} />
      ) : (
        <Text style={[styles.buttonText, kind === 'plain' && styles.buttonTextPlain]}>{title}</Text>
      )}
    </Pressable>
  );
}

export function Field({ label, ...props }: TextInputProps & { label: string }) {
  return (
    <View style={styles.field}>
      <Text style={styles.fieldLabel}>{label}</Text>
      <TextInput
        accessibilityLabel={label}
        placeholderTextColor={colors.muted}
        style={styles.input}
        {...props}
      />
    </View>
  );
}

export function Avatar({ name, size = 40 }: { name: string; size?: number }) {
  const letter = (name.trim()[0] ?? '?').toUpperCase();
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return (
    <View
      accessibilityElementsHidden
      importantForAccessibility="no"
      style={[
        styles.avatar,
        { width: size, height: size, borderRadius: size / 2, backgroundColor: `hsl(${h},55%,45%)` },
      ]}
    >
      <Text style={[styles.avatarText, { fontSize: size * 0.45 }]}>{letter}</Text>
    </View>
  );
}

export function Loading({ label = 'Loading' }: { label?: string }) {
  return (
    <View style={styles.center}>
      <ActivityIndicator accessibilityLabel={label} color={colors.primary} />
    </View>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return (
    <View style={styles.empty}>
      <Text style={[styles.body, styles.muted, styles.centerText]}>{children}</Text>
    </View>
  );
}

export const styles = StyleSheet.create({
  screen: { flex: 1, backgroundColor: colors.bg, padding: 16 },
  title: { fontSize: 26, fontWeight: '700', color: colors.text, marginBottom: 8 },
  body: { fontSize: 16, color: colors.text, lineHeight: 22 },
  paragraph: { marginVertical: 6 },
  muted: { color: colors.muted },
  error: { color: colors.danger, fontSize: 15, marginVertical: 8 },
  button: {
    backgroundColor: colors.primary,
    borderRadius: 10,
    paddingVertical: 13,
    paddingHorizontal: 18,
    alignItems: 'center',
    justifyContent: 'center',
    marginVertical: 6,
    minHeight: 48,
  },
  buttonPlain: { backgroundColor: 'transparent' },
  buttonDanger: { backgroundColor: colors.danger },
  buttonOk: { backgroundColor: colors.ok },
  buttonOff: { opacity: 0.5 },
  pressed: { opacity: 0.75 },
  buttonText: { color: '#fff', fontSize: 16, fontWeight: '600' },
  buttonTextPlain: { color: colors.primary },
  field: { marginVertical: 8 },
  fieldLabel: { fontSize: 14, color: colors.muted, marginBottom: 4 },
  input: {
    borderWidth: 1,
    borderColor: colors.line,
    borderRadius: 10,
    paddingHorizontal: 12,
    paddingVertical: 11,
    fontSize: 17,
    color: colors.text,
    minHeight: 48,
  },
  avatar: { alignItems: 'center', justifyContent: 'center' },
  avatarText: { color: '#fff', fontWeight: '700' },
  center: { flex: 1, alignItems: 'center', justifyContent: 'center', padding: 24 },
  centerText: { textAlign: 'center' },
  empty: { padding: 32, alignItems: 'center' },
  row: {
    flexDirection: 'row',
    alignItems: 'center',
    paddingVertical: 12,
    borderBottomWidth: StyleSheet.hairlineWidth,
    borderBottomColor: colors.line,
    gap: 12,
  },
});
