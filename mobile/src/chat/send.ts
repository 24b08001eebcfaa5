// Sending: the message shows at once (pending, with its client_id), goes
// over the socket when it is up, and waits in the outbox when it is not;
// every `hello` sends what waits, with the same client_id, so a send the
// server already stored is answered with that message, never doubled.
import { ApiError, errorWords } from '../api/errors';
import type { Message } from '../api/types';
import { uuid } from '../lib/uuid';
import { useChat } from '../store/chat';
import { useSession } from '../store/session';
import { socket } from '../ws/socket';

const inFlight = new Set<string>();

export function sendMessage(conversationId: string, body: string): string {
  const me = useSession.getState().user;
  const client_id = uuid();
  useChat.getState().addPending({
    conversation_id: conversationId,
    client_id,
    body,
    sender_id: me?.id ?? '',
  });
  void flushOutbox();
  return client_id;
}

export function retryMessage(clientId: string): void {
  useChat.getState().markPending(clientId);
  void flushOutbox();
}

/** Send what waits, in order; stop at the first that cannot go now. */
export async function flushOutbox(): Promise<void> {
  if (!socket.online) return;
  for (const m of useChat.getState().pending()) {
    if (inFlight.has(m.client_id)) continue;
    inFlight.add(m.client_id);
    try {
      const stored = await socket.request<Message>('message:send', {
        conversation_id: m.conversation_id,
        client_id: m.client_id,
        body: m.body,
      });
      useChat.getState().merge(m.conversation_id, [stored]);
    } catch (e) {
      const code = e instanceof ApiError ? e.code : 'internal';
      if (code === 'offline' || code === 'unavailable') return;
      useChat.getState().markFailed(m.client_id, errorWords(e));
    } finally {
      inFlight.delete(m.client_id);
    }
  }
}
