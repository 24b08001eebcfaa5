// People this account blocked, and unblocking them.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { FlatList, Text, View } from 'react-native';

import { errorWords } from '@/api/errors';
import { blocks } from '@/api/endpoints';
import { Avatar, Button, Empty, ErrorText, Loading, styles } from '@/components/ui';

export default function Blocked() {
  const qc = useQueryClient();
  const q = useQuery({ queryKey: ['blocks'], queryFn: blocks.list });
  const unblock = useMutation({
    mutationFn: (id: string) => blocks.remove(id),
    onSuccess: () => qc.invalidateQueries({ queryKey: ['blocks'] }),
  });

  if (q.isPending) return <Loading label="Loading blocked people" />;
  if (q.isError) return <ErrorText>{errorWords(q.error)}</ErrorText>;
  return (
    <View style={{ flex: 1, backgroundColor: '#fff' }}>
      <ErrorText>{unblock.isError ? errorWords(unblock.error) : ''}</ErrorText>
      <FlatList
        data={q.data.blocks}
        keyExtractor={(b) => b.user.id}
        contentContainerStyle={{ paddingHorizontal: 16 }}
        ListEmptyComponent={<Empty>You have not blocked anyone.</Empty>}
        renderItem={({ item }) => (
          <View style={styles.row}>
            <Avatar name={item.user.display_name} />
            <Text style={[styles.body, { flex: 1 }]}>{item.user.display_name}</Text>
            <Button
              title="Unblock"
              kind="plain"
              label={`Unblock ${item.user.display_name}`}
              onPress={() => unblock.mutate(item.user.id)}
            />
          </View>
        )}
      />
    </View>
  );
}
