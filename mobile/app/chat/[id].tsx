// One conversation: the messages (live, with ticks for delivered and
// read), typing, sending that shows at once and waits out a lost
// connection, and the buttons to call, report or block.
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Stack, useLocalSearchParams, useRouter } from 'expo-router';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { FlatList, KeyboardAvoidingView, Platform, Pressable, Text, TextInput, View } from 'react-native';

import { errorWords } from '@/api/errors';
import { blocks, conversations } from '@/api/endpoints';
import type { Conversation } from '@/api/types';
import { placeCall } from '@/calls/place';
import { retryMessage, sendMessage } from '@/chat/send';
import { ConnectionBanner } from '@/components/ConnectionBanner';
import { Button, ErrorText, Loading, colors, styles } from '@/components/ui';
import { shortTime } from '@/lib/time';
import { emptyConv, useChat, type ChatMessage } from '@/store/chat';
import { usePresence } from '@/store/presence';
import { useSession } from '@/store/session';
import { socket } from '@/ws/socket';

export function tick(m: ChatMessage, peerDelivered: number, peerRead: number): { glyph: string; label: string } {
  if (m.state === 'pending') return { glyph: '🕓', label: 'Sending' };
  if (m.state === 'failed') return { glyph: '⚠', label: 'Not sent' };
  if (m.seq <= peerRead) return { glyph: '✓✓', label: 'Read' };
  if (m.seq <= peerDelivered) return { glyph: '✓✓', label: 'Delivered' };
  return { glyph: '✓', label: 'Sent' };
}

function Bubble({
  m,
  mine,
  delivered,
  read,
  onLongPress,
}: {
  m: ChatMessage;
  mine: boolean;
  delivered: number;
  read: number;
  onLongPress: () => void;
}) {
  const t = mine ? tick(m, delivered, read) : null;
  return (
    <Pressable
      onLongPress={onLongPress}
      onPress={m.state === 'failed' ? () => retryMessage(m.client_id) : undefined}
      accessibilityLabel={`${mine ? 'You' : 'They'} said: ${m.body}${t ? `. ${t.label}` : ''}`}
      accessibilityHint={m.state === 'failed' ? 'Tap to send again' : mine ? undefined : 'Long press to report'}
      style={{ alignSelf: mine ? 'flex-end' : 'flex-start', maxWidth: '80%', marginVertical: 3 }}
      testID={mine ? 'msg-mine' : 'msg-theirs'}
    >
      <View
        style={{
          backgroundColor: mine ? colors.bubbleMine : colors.bubbleTheirs,
          borderRadius: 16,
          paddingHorizontal: 12,
          paddingVertical: 8,
        }}
      >
        <Text style={{ color: mine ? '#fff' : colors.text, fontSize: 16 }}>{m.body}</Text>
        <Text style={{ color: mine ? '#dbe7ff' : colors.muted, fontSize: 12, alignSelf: 'flex-end', marginTop: 2 }}>
          {m.state === 'sent' ? shortTime(m.sent_at) : ''}
          {t ? (
            <Text testID={`tick-${t.label.toLowerCase()}`} style={t.label === 'Read' ? { color: '#9effa8' } : undefined}>
              {'  '}
              {t.glyph}
            </Text>
          ) : null}
        </Text>
      </View>
      {m.state === 'failed' ? (
        <Text style={{ color: colors.danger, fontSize: 13 }}>{m.error ?? 'Not sent.'} Tap to try again.</Text>
      ) : null}
    </Pressable>
  );
}

export default function Chat() {
  const { id } = useLocalSearchParams<{ id: string }>();
  const router = useRouter();
  const qc = useQueryClient();
  const me = useSession((s) => s.user?.id ?? '');
  const conv = useChat((s) => s.convs[id] ?? emptyConv());
  const [text, setText] = useState('');
  const [menu, setMenu] = useState(false);
  const [error, setError] = useState('');
  const list = useRef<FlatList<ChatMessage>>(null);
  const typingSince = useRef(0);
  const typingStop = useRef<ReturnType<typeof setTimeout> | null>(null);

  const convs = useQuery({ queryKey: ['conversations'], queryFn: conversations.list });
  const info: Conversation | undefined = convs.data?.conversations.find((c) => c.id === id);
  const peer = info?.peer;
  const online = usePresence((s) => (peer ? s.by[peer.id]?.online : undefined));

  const history = useQuery({
    queryKey: ['messages', id],
    queryFn: () => conversations.messages(id, { limit: 50 }),
  });
  useEffect(() => {
    if (history.data) useChat.getState().merge(id, history.data.messages);
  }, [history.data, id]);

  // everything from them on screen is read
  const topTheirs = useMemo(
    () => conv.messages.reduce((t, m) => (m.sender_id !== me && m.state === 'sent' ? Math.max(t, m.seq) : t), 0),
    [conv.messages, me],
  );
  useEffect(() => {
    if (topTheirs <= conv.readSent) return;
    useChat.getState().setReadSent(id, topTheirs);
    const done = () => void qc.invalidateQueries({ queryKey: ['conversations'] });
    if (socket.online) {
      socket.request('message:read', { conversation_id: id, up_to_seq: topTheirs }).then(done, done);
    } else {
      conversations.read(id, topTheirs).then(done, done);
    }
  }, [topTheirs, conv.readSent, id, qc]);

  const stopTyping = useCallback(() => {
    if (typingStop.current) clearTimeout(typingStop.current);
    typingStop.current = null;
    if (typingSince.current) socket.notify('typing', { conversation_id: id, state: 'stop' });
    typingSince.current = 0;
  }, [id]);

  useEffect(() => stopTyping, [stopTyping]);

  const onChange = (t: string) => {
    setText(t);
    const now = Date.now();
    if (t && now - typingSince.current > 3000) {
      typingSince.current = now;
      socket.notify('typing', { conversation_id: id, state: 'start' });
    }
    if (typingStop.current) clearTimeout(typingStop.current);
    typingStop.current = setTimeout(stopTyping, 4000);
  };

  const send = () => {
    const body = text.trim();
    if (!body) return;
    if (body.length > 4000) {
      setError('Messages can be up to 4000 characters.');
      return;
    }
    setError('');
    stopTyping();
    sendMessage(id, body);
    setText('');
  };

  const block = async () => {
    setMenu(false);
    if (!peer) return;
    try {
      await blocks.add(peer.id);
      void qc.invalidateQueries({ queryKey: ['contacts'] });
      router.back();
    } catch (e) {
      setError(errorWords(e));
    }
  };

  const subtitle = conv.peerTyping ? 'typing…' : online ? 'online' : '';

  return (
    <KeyboardAvoidingView style={{ flex: 1, backgroundColor: '#fff' }} behavior={Platform.OS === 'ios' ? 'padding' : undefined} keyboardVerticalOffset={90}>
      <Stack.Screen
        options={{
          title: peer?.display_name ?? 'Chat',
          headerRight: () =>
            peer ? (
              <View style={{ flexDirection: 'row' }}>
                <Pressable accessibilityRole="button" accessibilityLabel={`Video call ${peer.display_name}`} onPress={() => placeCall(router, peer, 'video')} style={{ padding: 8 }} testID="video-call">
                  <Text style={{ fontSize: 20 }}>🎥</Text>
                </Pressable>
                <Pressable accessibilityRole="button" accessibilityLabel={`Voice call ${peer.display_name}`} onPress={() => placeCall(router, peer, 'audio')} style={{ padding: 8 }} testID="voice-call">
                  <Text style={{ fontSize: 20 }}>📞</Text>
                </Pressable>
                <Pressable accessibilityRole="button" accessibilityLabel="More" onPress={() => setMenu(!menu)} style={{ padding: 8 }}>
                  <Text style={{ fontSize: 20 }}>⋯</Text>
                </Pressable>
              </View>
            ) : null,
        }}
      />
      <ConnectionBanner />
      {subtitle ? (
        <Text style={[styles.muted, { textAlign: 'center', paddingVertical: 2 }]} testID="peer-status" accessibilityLiveRegion="polite">
          {peer?.display_name} is {subtitle}
        </Text>
      ) : null}
      {menu && peer ? (
        <View style={{ padding: 8, borderBottomWidth: 1, borderBottomColor: colors.line }}>
          <Button title={`Report ${peer.display_name}`} kind="plain" onPress={() => { setMenu(false); router.push({ pathname: '/report', params: { user_id: peer.id, name: peer.display_name } }); }} />
          <Button title={`Block ${peer.display_name}`} kind="plain" onPress={block} />
        </View>
      ) : null}
      {history.isPending && conv.messages.length === 0 ? (
        <Loading label="Loading messages" />
      ) : (
        <FlatList
          ref={list}
          data={conv.messages}
          keyExtractor={(m) => m.client_id}
          contentContainerStyle={{ padding: 12 }}
          onContentSizeChange={() => list.current?.scrollToEnd({ animated: false })}
          ListHeaderComponent={history.isError ? <ErrorText>{errorWords(history.error)}</ErrorText> : null}
          renderItem={({ item }) => (
            <Bubble
              m={item}
              mine={item.sender_id === me}
              delivered={conv.peerDelivered}
              read={conv.peerRead}
              onLongPress={() =>
                item.sender_id !== me && peer
                  ? router.push({ pathname: '/report', params: { user_id: peer.id, name: peer.display_name, message_id: item.id } })
                  : undefined
              }
            />
          )}
        />
      )}
      <ErrorText>{error}</ErrorText>
      <View style={{ flexDirection: 'row', padding: 8, gap: 8, borderTopWidth: 1, borderTopColor: colors.line, alignItems: 'flex-end' }}>
        <TextInput
          value={text}
          onChangeText={onChange}
          placeholder="Message"
          placeholderTextColor={colors.muted}
          accessibilityLabel="Message"
          multiline
          style={[styles.input, { flex: 1, maxHeight: 120 }]}
          onSubmitEditing={send}
          blurOnSubmit={false}
          onKeyPress={(e) => {
            const ne = e.nativeEvent as { key: string; shiftKey?: boolean };
            if (Platform.OS === 'web' && ne.key === 'Enter' && !ne.shiftKey) {
              (e as unknown as { preventDefault?: () => void }).preventDefault?.();
              send();
            }
          }}
          testID="composer"
        />
        <Button title="Send" onPress={send} disabled={!text.trim()} testID="send" />
      </View>
    </KeyboardAvoidingView>
  );
}
