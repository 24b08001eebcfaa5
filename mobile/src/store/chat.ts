// Messages the app has seen, per conversation, with the ones still being
// sent (optimistic, by client_id), the other member's delivered / read
// pointers (for the ticks) and whether they are typing.
import { create } from 'zustand';

import type { Message } from '../api/types';

export type SendState = 'sent' | 'pending' | 'failed';

export interface ChatMessage extends Message {
  state: SendState;
  /** words for a failed send */
  error?: string;
}

export interface ConvState {
  messages: ChatMessage[];
  peerDelivered: number;
  peerRead: number;
  peerTyping: boolean;
  /** the highest seq this device has told the server it read */
  readSent: number;
}

const EMPTY: ConvState = {
  messages: [],
  peerDelivered: 0,
  peerRead: 0,
  peerTyping: false,
  readSent: 0,
};

interface ChatStore {
  convs: Record<string, ConvState>;
  merge(convId: string, msgs: Message[]): void;
  addPending(m: { conversation_id: string; client_id: string; body: string; sender_id: string }): void;
  markFailed(clientId: string, error: string): void;
  markPending(clientId: string): void;
  receipt(convId: string, kind: 'delivered' | 'read', upToSeq: number): void;
  setTyping(convId: string, on: boolean): void;
  setReadSent(convId: string, seq: number): void;
  pending(): ChatMessage[];
  reset(): void;
}

function order(a: ChatMessage, b: ChatMessage): number {
  // stored ones by seq, then those still on their way in the order written
  if (a.state !== 'sent' && b.state !== 'sent') return a.sent_at < b.sent_at ? -1 : 1;
  if (a.state !== 'sent') return 1;
  if (b.state !== 'sent') return -1;
  return a.seq - b.seq;
}

function conv(s: ChatStore, id: string): ConvState {
  return s.convs[id] ?? EMPTY;
}

export const useChat = create<ChatStore>((set, get) => ({
  convs: {},

  merge(convId, msgs) {
    if (msgs.length === 0) {
      if (!get().convs[convId]) set((s) => ({ convs: { ...s.convs, [convId]: { ...EMPTY } } }));
      return;
    }
    set((s) => {
      const c = conv(s, convId);
      const byClient = new Map(c.messages.map((m) => [m.client_id, m]));
      let delivered = c.peerDelivered;
      let read = c.peerRead;
      for (const m of msgs) {
        byClient.set(m.client_id, { ...m, state: 'sent' });
        if (m.read_at) read = Math.max(read, m.seq);
        if (m.delivered_at) delivered = Math.max(delivered, m.seq);
      }
      const messages = [...byClient.values()].sort(order);
      return {
        convs: {
          ...s.convs,
          [convId]: { ...c, messages, peerDelivered: delivered, peerRead: read },
        },
      };
    });
  },

  addPending({ conversation_id, client_id, body, sender_id }) {
    set((s) => {
      const c = conv(s, conversation_id);
      const m: ChatMessage = {
        id: '',
        conversation_id,
        seq: 0,
        sender_id,
        client_id,
        body,
        sent_at: new Date().toISOString(),
        delivered_at: null,
        read_at: null,
        state: 'pending',
      };
      return {
        convs: { ...s.convs, [conversation_id]: { ...c, messages: [...c.messages, m] } },
      };
    });
  },

  markFailed(clientId, error) {
    set((s) => patchByClient(s, clientId, { state: 'failed', error }));
  },

  markPending(clientId) {
    set((s) => patchByClient(s, clientId, { state: 'pending', error: undefined }));
  },

  receipt(convId, kind, upToSeq) {
    set((s) => {
      const c = conv(s, convId);
      const next =
        kind === 'read'
          ? {
              ...c,
              peerRead: Math.max(c.peerRead, upToSeq),
              peerDelivered: Math.max(c.peerDelivered, upToSeq),
            }
          : { ...c, peerDelivered: Math.max(c.peerDelivered, upToSeq) };
      return { convs: { ...s.convs, [convId]: next } };
    });
  },

  setTyping(convId, on) {
    set((s) => ({ convs: { ...s.convs, [convId]: { ...conv(s, convId), peerTyping: on } } }));
  },

  setReadSent(convId, seq) {
    set((s) => ({ convs: { ...s.convs, [convId]: { ...conv(s, convId), readSent: seq } } }));
  },

  pending() {
    const out: ChatMessage[] = [];
    for (const c of Object.values(get().convs)) {
      for (const m of c.messages) if (m.state === 'pending') out.push(m);
    }
    return out.sort((a, b) => (a.sent_at < b.sent_at ? -1 : 1));
  },

  reset() {
    set({ convs: {} });
  },
}));

function patchByClient(
  s: ChatStore,
  clientId: string,
  patch: Partial<ChatMessage>,
): Partial<ChatStore> {
  for (const [id, c] of Object.entries(s.convs)) {
    const i = c.messages.findIndex((m) => m.client_id === clientId);
    if (i < 0) continue;
    const messages = c.messages.slice();
    messages[i] = { ...messages[i]!, ...patch };
    return { convs: { ...s.convs, [id]: { ...c, messages } } };
  }
  return {};
}

export function emptyConv(): ConvState {
  return EMPTY;
}
