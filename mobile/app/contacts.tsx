// Contacts: find someone by username or phone number and ask them; the
// requests others sent, to accept; those you sent; and your contacts, a
// tap away from a chat.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useRouter } from 'expo-router';
import { useState } from 'react';
import { ScrollView, Text, View } from 'react-native';

import { errorWords } from '@/api/errors';
import { contacts, conversations, invites, users } from '@/api/endpoints';
import type { Contact, PublicUser } from '@/api/types';
import { ConnectionBanner } from '@/components/ConnectionBanner';
import { Avatar, Body, Button, ErrorText, Field, Loading, styles } from '@/components/ui';
import { normalisePhone } from '@/lib/phone';

/** What the search box holds, as the server's `q` (null: not searchable). */
export function searchQuery(input: string): string | null {
  const t = input.trim();
  if (/^[+0]/.test(t) || /^[0-9 ()-]+$/.test(t)) return normalisePhone(t);
  const u = t.replace(/^@/, '').toLowerCase();
  return /^[a-z0-9_.]{2,32}$/.test(u) ? u : null;
}

function Person({ user, sub, children }: { user: PublicUser; sub?: string; children?: React.ReactNode }) {
  return (
    <View style={styles.row}>
      <Avatar name={user.display_name} />
      <View style={{ flex: 1 }}>
        <Text style={[styles.body, { fontWeight: '600' }]}>{user.display_name}</Text>
        <Text style={styles.muted}>{sub ?? (user.username ? `@${user.username}` : '')}</Text>
      </View>
      {children}
    </View>
  );
}

function Section({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <View style={{ marginTop: 16 }}>
      <Text style={[styles.muted, { fontWeight: '700', textTransform: 'uppercase', fontSize: 13 }]} accessibilityRole="header">
        {title}
      </Text>
      {children}
    </View>
  );
}

export default function Contacts() {
  const router = useRouter();
  const qc = useQueryClient();
  const [text, setText] = useState('');
  const [results, setResults] = useState<PublicUser[] | null>(null);
  const [error, setError] = useState('');
  const [searched, setSearched] = useState('');
  const [info, setInfo] = useState('');
  // contact:request / contact:accepted refresh this at once where the
  // server sends them; until every server does, the open screen also polls
  const list = useQuery({ queryKey: ['contacts'], queryFn: contacts.list, refetchInterval: 4000 });

  const refresh = () => qc.invalidateQueries({ queryKey: ['contacts'] });
  const onError = (e: unknown) => setError(errorWords(e));

  const search = useMutation({
    mutationFn: (q: string) => users.search(q),
    onSuccess: (r, q) => {
      setResults(r.users);
      setSearched(q);
    },
    onError,
  });
  // someone not on famcall yet: an SMS with the link, and they become a
  // contact when they sign up with that number
  const invite = useMutation({
    mutationFn: (phone: string) => invites.send(phone),
    onSuccess: (r) => {
      if (r.user) setResults([r.user]);
      else setInfo(`We sent an invitation to ${searched}. They will be your contact when they join.`);
    },
    onError,
  });
  const add = useMutation({
    mutationFn: (u: PublicUser) => contacts.add({ user_id: u.id }),
    onSuccess: () => {
      setResults(null);
      setText('');
      void refresh();
    },
    onError,
  });
  const accept = useMutation({ mutationFn: (id: string) => contacts.accept(id), onSuccess: refresh, onError });
  const remove = useMutation({ mutationFn: (id: string) => contacts.remove(id), onSuccess: refresh, onError });
  const open = useMutation({
    mutationFn: (id: string) => conversations.open(id),
    onSuccess: (c) => {
      void qc.invalidateQueries({ queryKey: ['conversations'] });
      router.push(`/chat/${c.id}`);
    },
    onError,
  });

  const submit = () => {
    setError('');
    setInfo('');
    const q = searchQuery(text);
    if (!q) {
      setError('Type at least 2 letters of a username, or a full number with its country code.');
      return;
    }
    search.mutate(q);
  };

  const all: Contact[] = list.data?.contacts ?? [];
  const known = new Map(all.map((c) => [c.user.id, c]));
  const incoming = all.filter((c) => c.status === 'pending' && c.direction === 'incoming');
  const outgoing = all.filter((c) => c.status === 'pending' && c.direction === 'outgoing');
  const accepted = all.filter((c) => c.status === 'accepted');

  return (
    <View style={{ flex: 1, backgroundColor: '#fff' }}>
      <ConnectionBanner />
      <ScrollView contentContainerStyle={{ padding: 16 }} keyboardShouldPersistTaps="handled">
        <Field
          label="Find someone by username or phone number"
          value={text}
          onChangeText={setText}
          onSubmitEditing={submit}
          autoCapitalize="none"
          placeholder="grandma or +44 7700 900123"
          returnKeyType="search"
          testID="contact-search"
        />
        <Button title="Search" onPress={submit} busy={search.isPending} testID="contact-search-go" />
        <ErrorText>{error}</ErrorText>
        {results ? (
          <Section title="Found">
            {results.length === 0 && !searched.startsWith('+') ? (
              <Body muted>Nobody found. Check the spelling or the number.</Body>
            ) : null}
            {results.length === 0 && searched.startsWith('+') ? (
              <>
                <Body muted>{searched} is not on famcall yet.</Body>
                {info ? (
                  <Body>{info}</Body>
                ) : (
                  <Button
                    title="Invite them by SMS"
                    onPress={() => invite.mutate(searched)}
                    busy={invite.isPending}
                    testID="invite"
                  />
                )}
              </>
            ) : null}
            {results.map((u) => {
              const c = known.get(u.id);
              return (
                <Person key={u.id} user={u}>
                  {c ? (
                    <Text style={styles.muted}>{c.status === 'accepted' ? 'Contact' : 'Asked'}</Text>
                  ) : (
                    <Button title="Add" label={`Add ${u.display_name}`} onPress={() => add.mutate(u)} testID={`add-${u.username ?? u.id}`} />
                  )}
                </Person>
              );
            })}
          </Section>
        ) : null}
        {list.isPending ? <Loading label="Loading contacts" /> : null}
        {list.isError ? <ErrorText>{errorWords(list.error)}</ErrorText> : null}
        {incoming.length ? (
          <Section title="Asked to be your contact">
            {incoming.map((c) => (
              <Person key={c.user.id} user={c.user}>
                <Button title="Accept" kind="ok" label={`Accept ${c.user.display_name}`} onPress={() => accept.mutate(c.user.id)} testID={`accept-${c.user.username ?? c.user.id}`} />
                <Button title="Decline" kind="plain" label={`Decline ${c.user.display_name}`} onPress={() => remove.mutate(c.user.id)} />
              </Person>
            ))}
          </Section>
        ) : null}
        {outgoing.length ? (
          <Section title="Waiting for an answer">
            {outgoing.map((c) => (
              <Person key={c.user.id} user={c.user}>
                <Button title="Withdraw" kind="plain" label={`Withdraw request to ${c.user.display_name}`} onPress={() => remove.mutate(c.user.id)} />
              </Person>
            ))}
          </Section>
        ) : null}
        <Section title="Your contacts">
          {list.isSuccess && accepted.length === 0 ? (
            <Body muted>No contacts yet. Search for a relative above.</Body>
          ) : null}
          {accepted.map((c) => (
            <Person key={c.user.id} user={c.user}>
              <Button
                title="Message"
                label={`Message ${c.user.display_name}`}
                onPress={() => open.mutate(c.user.id)}
                testID={`message-${c.user.username ?? c.user.id}`}
              />
            </Person>
          ))}
        </Section>
      </ScrollView>
    </View>
  );
}
