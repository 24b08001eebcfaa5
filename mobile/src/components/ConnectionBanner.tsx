// Tells the person when the app is not connected, and what still works.
import { StyleSheet, Text, View } from 'react-native';

import { useSocketStatus } from '../ws/socket';

export function ConnectionBanner() {
  const status = useSocketStatus((s) => s.status);
  if (status === 'online' || status === 'idle') return null;
  const text =
    status === 'connecting'
      ? 'Connecting…'
      : 'Offline. Messages you write will be sent when you are back online.';
  return (
    <View style={s.bar} accessibilityRole="alert" accessibilityLiveRegion="polite">
      <Text style={s.text}>{text}</Text>
    </View>
  );
}

const s = StyleSheet.create({
  bar: { backgroundColor: '#fff8c5', paddingVertical: 6, paddingHorizontal: 12 },
  text: { color: '#4d2d00', fontSize: 14, textAlign: 'center' },
});
