// Chats: every conversation, the latest first, with its last message and
// how many are unread; refreshed whenever the socket brings a message.
import { useQuery } from '@tanstack/react-query';
import { useRouter } from 'expo-router';
import { FlatList, Pressable, Text, View } from 'react-native';

import { errorWords } from '@/api/errors';
import { conversations } from '@/api/endpoints';
import type { Conversation } from '@/api/types';
import { ConnectionBanner } from '@/components/ConnectionBanner';
import { Avatar, Button, Empty, ErrorText, Loading, colors, styles } from '@/components/ui';
import { shortTime } from '@/lib/time';
import { useSession } from '@/store/session';

function Row({ c, me, onPress }: { c: Conversation; me: string; onPress: () => void }) {
  const last = c.last_message;
  const preview = last ? `${last.sender_id === me ? 'You: ' : ''}${last.body}` : 'No messages yet';
  const unread = c.unread_count > 0;
  return (
    <Pressable
      onPress={onPress}
      accessibilityRole="button"
      accessibilityLabel={`Chat with ${c.peer.display_name}${unread ? `, ${c.unread_count} unread` : ''}`}
      style={({ pressed }) => [styles.row, pressed && styles.pressed]}
      testID={`conversation-${c.peer.username ?? c.peer.id}`}
    >
      <Avatar name={c.peer.display_name} />
      <View style={{ flex: 1 }}>
        <Text style={[styles.body, { fontWeight: unread ? '700' : '600' }]} numberOfLines={1}>
          {c.peer.display_name}
        </Text>
        <Text style={[styles.body, styles.muted, unread && { color: colors.text }]} numberOfLines={1}>
          {preview}
        </Text>
      </View>
      <View style={{ alignItems: 'flex-end', gap: 4 }}>
        <Text style={[styles.muted, { fontSize: 13 }]}>{shortTime(last?.sent_at ?? c.created_at)}</Text>
        {unread ? (
          <View
            style={{ backgroundColor: colors.primary, borderRadius: 10, paddingHorizontal: 7, minWidth: 20 }}
            testID="unread-badge"
          >
            <Text style={{ color: '#fff', fontSize: 13, textAlign: 'center' }}>{c.unread_count}</Text>
          </View>
        ) : null}
      </View>
    </Pressable>
  );
}

export default function Chats() {
  const router = useRouter();
  const me = useSession((s) => s.user?.id ?? '');
  const q = useQuery({ queryKey: ['conversations'], queryFn: conversations.list });

  return (
    <View style={{ flex: 1, backgroundColor: '#fff' }}>
      <ConnectionBanner />
      <View style={{ paddingHorizontal: 16 }}>
        <Button title="Find a contact" kind="plain" onPress={() => router.push('/contacts')} testID="open-contacts" />
      </View>
      {q.isPending ? (
        <Loading label="Loading chats" />
      ) : q.isError ? (
        <View style={{ padding: 16 }}>
          <ErrorText>{errorWords(q.error)}</ErrorText>
          <Button title="Try again" onPress={() => void q.refetch()} />
        </View>
      ) : (
        <FlatList
          data={q.data.conversations}
          keyExtractor={(c) => c.id}
          contentContainerStyle={{ paddingHorizontal: 16 }}
          renderItem={({ item }) => (
            <Row c={item} me={me} onPress={() => router.push(`/chat/${item.id}`)} />
          )}
          ListEmptyComponent={
            <Empty>No chats yet. Find a relative under “Find a contact” and say hello.</Empty>
          }
          refreshing={q.isRefetching}
          onRefresh={() => void q.refetch()}
        />
      )}
    </View>
  );
}
