// The socket's events into the app's state: messages and receipts into the
// chat store, presence, and the server lists (conversations, contacts,
// call history) refetched when an event says they changed. Each `hello`
// catches up with `sync` from the last cursor, then sends the outbox.
import type { QueryClient } from '@tanstack/react-query';

import type { Message } from '../api/types';
import { flushOutbox } from '../chat/send';
import * as secure from '../lib/secureStorage';
import { useChat } from '../store/chat';
import { setPresence } from '../store/presence';
import { useSession } from '../store/session';
import { socket, type ServerEvent } from './socket';

interface Receipt {
  conversation_id: string;
  user_id: string;
  delivered_seq: number;
  read_seq: number;
}

interface SyncAck {
  messages: Message[];
  receipts: Receipt[];
  presence: { user_id: string; online: boolean; last_seen: string | null }[];
  cursor: string;
  more: boolean;
}

const typingTimers = new Map<string, ReturnType<typeof setTimeout>>();
let syncing = false;

function me(): string {
  return useSession.getState().user?.id ?? '';
}

function cursorKey(): string {
  return `famcall.cursor.${me()}`;
}

function takeMessages(msgs: Message[]): void {
  const byConv = new Map<string, Message[]>();
  for (const m of msgs) {
    const list = byConv.get(m.conversation_id) ?? [];
    list.push(m);
    byConv.set(m.conversation_id, list);
  }
  for (const [conv, list] of byConv) {
    useChat.getState().merge(conv, list);
    const theirs = list.filter((m) => m.sender_id !== me());
    const top = Math.max(0, ...theirs.map((m) => m.seq));
    if (top > 0) socket.notify('message:delivered', { conversation_id: conv, up_to_seq: top });
  }
}

async function catchUp(qc: QueryClient): Promise<void> {
  if (syncing) return;
  syncing = true;
  try {
    let since = await secure.getItem(cursorKey());
    for (let page = 0; page < 50; page++) {
      const ack = await socket.request<SyncAck>('sync', since ? { since } : {});
      takeMessages(ack.messages ?? []);
      for (const r of ack.receipts ?? []) {
        if (r.user_id === me()) continue;
        useChat.getState().receipt(r.conversation_id, 'delivered', r.delivered_seq);
        useChat.getState().receipt(r.conversation_id, 'read', r.read_seq);
      }
      for (const p of ack.presence ?? []) setPresence(p.user_id, p);
      since = ack.cursor;
      await secure.setItem(cursorKey(), ack.cursor);
      if (!ack.more) break;
    }
  } catch {
    // the socket dropped mid-way: the next hello syncs from the saved cursor
  } finally {
    syncing = false;
  }
  void qc.invalidateQueries({ queryKey: ['conversations'] });
  void flushOutbox();
}

function onEvent(qc: QueryClient, ev: ServerEvent): void {
  const d = ev.data;
  switch (ev.type) {
    case 'hello':
    case 'resync':
      void catchUp(qc);
      return;
    case 'message:new': {
      const m = d as unknown as Message;
      takeMessages([m]);
      if (m.sender_id !== me()) useChat.getState().setTyping(m.conversation_id, false);
      void qc.invalidateQueries({ queryKey: ['conversations'] });
      return;
    }
    case 'message:delivered':
    case 'message:read': {
      const conv = String(d.conversation_id);
      if (d.user_id === me()) {
        // another of my devices read it: the unread count changes
        void qc.invalidateQueries({ queryKey: ['conversations'] });
        return;
      }
      useChat
        .getState()
        .receipt(conv, ev.type === 'message:read' ? 'read' : 'delivered', Number(d.up_to_seq));
      return;
    }
    case 'typing': {
      const conv = String(d.conversation_id);
      if (d.user_id === me()) return;
      const on = d.state === 'start';
      useChat.getState().setTyping(conv, on);
      const t = typingTimers.get(conv);
      if (t) clearTimeout(t);
      if (on) {
        // a stop may never come (they went away): typing fades by itself
        typingTimers.set(
          conv,
          setTimeout(() => useChat.getState().setTyping(conv, false), 6000),
        );
      }
      return;
    }
    case 'presence':
      setPresence(String(d.user_id), {
        online: !!d.online,
        last_seen: (d.last_seen as string | null) ?? null,
      });
      return;
    case 'contact:request':
    case 'contact:accepted':
      void qc.invalidateQueries({ queryKey: ['contacts'] });
      void qc.invalidateQueries({ queryKey: ['conversations'] });
      return;
    case 'call:end':
    case 'call:timeout':
    case 'call:reject':
    case 'call:cancel':
    case 'call:busy':
    case 'call:answered_elsewhere':
      setTimeout(() => void qc.invalidateQueries({ queryKey: ['calls'] }), 300);
      return;
  }
}

export function wireRealtime(qc: QueryClient): () => void {
  return socket.on((ev) => onEvent(qc, ev));
}
