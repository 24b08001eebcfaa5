// Settings: the profile, blocked people, why the app asks for what it
// asks, and logging out.
import { useRouter } from 'expo-router';
import { useState } from 'react';
import { Pressable, ScrollView, Text, View } from 'react-native';

import { Avatar, Body, Button, colors, styles } from '@/components/ui';
import { logOut } from '@/lib/logout';
import { useSession } from '@/store/session';

function Item({ title, hint, onPress }: { title: string; hint?: string; onPress: () => void }) {
  return (
    <Pressable
      onPress={onPress}
      accessibilityRole="button"
      accessibilityLabel={title}
      accessibilityHint={hint}
      style={({ pressed }) => [styles.row, pressed && styles.pressed]}
    >
      <Text style={[styles.body, { flex: 1 }]}>{title}</Text>
      <Text style={styles.muted}>›</Text>
    </Pressable>
  );
}

export default function Settings() {
  const router = useRouter();
  const user = useSession((s) => s.user);
  const [busy, setBusy] = useState(false);

  return (
    <ScrollView style={{ backgroundColor: '#fff' }} contentContainerStyle={{ padding: 16 }}>
      <View style={[styles.row, { borderBottomWidth: 0 }]}>
        <Avatar name={user?.display_name ?? '?'} size={56} />
        <View style={{ flex: 1 }}>
          <Text style={[styles.body, { fontSize: 20, fontWeight: '700' }]}>{user?.display_name}</Text>
          <Text style={styles.muted}>
            {[user?.username ? `@${user.username}` : null, user?.phone, user?.email]
              .filter(Boolean)
              .join(' · ')}
          </Text>
        </View>
      </View>
      <Item title="Profile" hint="Change your name, username and picture" onPress={() => router.push('/settings/profile')} />
      <Item title="Blocked people" onPress={() => router.push('/settings/blocked')} />
      <Item title="Camera, microphone and notifications" onPress={() => router.push('/permissions')} />
      <Item title="Your data and account" hint="Download your data, privacy, delete your account" onPress={() => router.push('/settings/account')} />
      <View style={{ marginTop: 24 }}>
        <Body muted>famcall 0.1.0</Body>
        <Button
          title="Log out"
          kind="danger"
          busy={busy}
          testID="logout"
          onPress={async () => {
            setBusy(true);
            await logOut();
            router.replace('/sign-in');
          }}
        />
        <Text style={{ color: colors.muted, fontSize: 13 }}>
          Logging out ends this device’s session. Your chats stay on the server.
        </Text>
      </View>
    </ScrollView>
  );
}
