// Call history, newest first; missed calls stand out; a tap calls back.
import { useQuery } from '@tanstack/react-query';
import { useRouter } from 'expo-router';
import { FlatList, Pressable, Text, View } from 'react-native';

import { errorWords } from '@/api/errors';
import { calls } from '@/api/endpoints';
import type { CallItem } from '@/api/types';
import { placeCall } from '@/calls/place';
import { ConnectionBanner } from '@/components/ConnectionBanner';
import { Avatar, Button, Empty, ErrorText, Loading, colors, styles } from '@/components/ui';
import { duration, shortTime } from '@/lib/time';

export function describeCall(c: CallItem): string {
  const kind = c.media === 'audio' ? 'Voice call' : 'Video call';
  if (c.missed) return `Missed ${kind.toLowerCase()}`;
  if (c.status === 'rejected') return c.direction === 'incoming' ? 'Declined' : 'Not answered';
  if (c.status === 'cancelled') return 'Cancelled';
  if (c.status === 'missed') return 'No answer';
  if (c.status === 'busy') return 'Busy';
  const d = duration(c.answered_at, c.ended_at);
  return `${c.direction === 'incoming' ? 'Incoming' : 'Outgoing'} ${kind.toLowerCase()}${d ? `, ${d}` : ''}`;
}

export default function Calls() {
  const router = useRouter();
  const q = useQuery({ queryKey: ['calls'], queryFn: () => calls.history() });

  const callBack = (c: CallItem) => placeCall(router, c.peer, c.media);

  return (
    <View style={{ flex: 1, backgroundColor: '#fff' }}>
      <ConnectionBanner />
      {q.isPending ? (
        <Loading label="Loading calls" />
      ) : q.isError ? (
        <View style={{ padding: 16 }}>
          <ErrorText>{errorWords(q.error)}</ErrorText>
          <Button title="Try again" onPress={() => void q.refetch()} />
        </View>
      ) : (
        <FlatList
          data={q.data.calls}
          keyExtractor={(c) => c.call_id}
          contentContainerStyle={{ paddingHorizontal: 16 }}
          refreshing={q.isRefetching}
          onRefresh={() => void q.refetch()}
          ListEmptyComponent={<Empty>No calls yet.</Empty>}
          renderItem={({ item }) => (
            <View style={styles.row} testID="call-item">
              <Avatar name={item.peer.display_name} />
              <View style={{ flex: 1 }}>
                <Text
                  style={[styles.body, { fontWeight: '600' }, item.missed && { color: colors.danger }]}
                  numberOfLines={1}
                >
                  {item.peer.display_name}
                </Text>
                <Text style={[styles.body, styles.muted, item.missed && { color: colors.danger }]}>
                  {item.direction === 'incoming' ? '↙ ' : '↗ '}
                  {describeCall(item)} · {shortTime(item.created_at)}
                </Text>
              </View>
              <Pressable
                onPress={() => callBack(item)}
                accessibilityRole="button"
                accessibilityLabel={`Call ${item.peer.display_name} back`}
                style={({ pressed }) => [{ padding: 10 }, pressed && styles.pressed]}
              >
                <Text style={{ fontSize: 22 }}>{item.media === 'audio' ? '📞' : '🎥'}</Text>
              </Pressable>
            </View>
          )}
        />
      )}
    </View>
  );
}
