import { act, fireEvent, screen, waitFor } from '@testing-library/react-native';

import Chat, { tick } from '../app/chat/[id]';
import type { Conversation, Message } from '@/api/types';
import { flushOutbox, sendMessage } from '@/chat/send';
import { useChat, type ChatMessage } from '@/store/chat';
import { socket, useSocketStatus } from '@/ws/socket';
import { BOB, ME, mockApi, renderWithQuery, router, setParams, signedIn } from './helpers';

function msg(seq: number, from: string, body: string, extra: Partial<Message> = {}): Message {
  return {
    id: `m${seq}`,
    conversation_id: 'c1',
    seq,
    sender_id: from,
    client_id: `aaaaaaaa-0000-4000-8000-00000000000${seq}`,
    body,
    sent_at: `2026-01-01T10:0${seq}:00Z`,
    delivered_at: null,
    read_at: null,
    ...extra,
  };
}

const CONV: Conversation = {
  id: 'c1',
  kind: '1:1',
  peer: BOB,
  last_seq: 2,
  last_read_seq: 0,
  unread_count: 1,
  last_message: null,
  created_at: '2026-01-01T00:00:00Z',
};

let requests: { type: string; data: Record<string, unknown> }[] = [];

beforeEach(() => {
  jest.clearAllMocks();
  signedIn();
  useChat.getState().reset();
  setParams({ id: 'c1' });
  requests = [];
  useSocketStatus.setState({ status: 'online' });
  jest.spyOn(socket, 'notify').mockImplementation(() => undefined);
  jest.spyOn(socket, 'request').mockImplementation(async (type: string, data: object) => {
    requests.push({ type, data: data as Record<string, unknown> });
    if (type === 'message:send') {
      const d = data as { client_id: string; body: string };
      return { ...msg(3, ME.id, d.body), client_id: d.client_id } as never;
    }
    return {} as never;
  });
});

afterEach(() => jest.restoreAllMocks());

describe('ticks', () => {
  const mine = (seq: number, state: ChatMessage['state'] = 'sent'): ChatMessage => ({
    ...msg(seq, ME.id, 'x'),
    state,
  });
  it('follow the other side’s pointers', () => {
    expect(tick(mine(0, 'pending'), 0, 0).label).toBe('Sending');
    expect(tick(mine(0, 'failed'), 0, 0).label).toBe('Not sent');
    expect(tick(mine(2), 1, 0).label).toBe('Sent');
    expect(tick(mine(2), 2, 0).label).toBe('Delivered');
    expect(tick(mine(2), 2, 2).label).toBe('Read');
  });
});

describe('Chat', () => {
  function serve() {
    return mockApi({
      'GET /v1/conversations': () => [200, { conversations: [CONV] }],
      'GET /v1/conversations/c1/messages': () => [
        200,
        { messages: [msg(1, ME.id, 'Hello Bob', { delivered_at: 'x' }), msg(2, BOB.id, 'Hi Ann')] },
      ],
    });
  }

  it('shows the history with ticks, and tells the server what was read', async () => {
    serve();
    renderWithQuery(<Chat />);
    expect(await screen.findByText('Hi Ann')).toBeTruthy();
    expect(screen.getByLabelText('You said: Hello Bob. Delivered')).toBeTruthy();
    await waitFor(() =>
      expect(requests).toContainEqual({ type: 'message:read', data: { conversation_id: 'c1', up_to_seq: 2 } }),
    );
  });

  it('sends at once and shows the stored message', async () => {
    serve();
    renderWithQuery(<Chat />);
    await screen.findByText('Hi Ann');
    fireEvent.changeText(screen.getByLabelText('Message'), 'Lunch on Sunday?');
    expect(socket.notify).toHaveBeenCalledWith('typing', { conversation_id: 'c1', state: 'start' });
    fireEvent.press(screen.getByRole('button', { name: 'Send' }));
    expect(await screen.findByLabelText('You said: Lunch on Sunday?. Sent')).toBeTruthy();
    const send = requests.find((r) => r.type === 'message:send')!;
    expect(send.data.body).toBe('Lunch on Sunday?');
    expect(send.data.client_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('live receipts and typing from the other side show', async () => {
    serve();
    renderWithQuery(<Chat />);
    await screen.findByText('Hi Ann');
    act(() => {
      useChat.getState().receipt('c1', 'read', 1);
      useChat.getState().setTyping('c1', true);
    });
    expect(screen.getByLabelText('You said: Hello Bob. Read')).toBeTruthy();
    expect(screen.getByText('Bob is typing…')).toBeTruthy();
  });

  it('has call buttons for the person in the header', async () => {
    serve();
    renderWithQuery(<Chat />);
    fireEvent.press(await screen.findByRole('button', { name: 'Video call Bob' }));
    expect(router.push).toHaveBeenCalledWith('/call');
  });
});

describe('the outbox', () => {
  it('keeps messages written offline and sends them, once each, when back', async () => {
    useSocketStatus.setState({ status: 'offline' });
    const id = sendMessage('c1', 'written offline');
    expect(useChat.getState().convs.c1!.messages[0]).toMatchObject({ client_id: id, state: 'pending' });
    await flushOutbox();
    expect(requests).toHaveLength(0);

    useSocketStatus.setState({ status: 'online' });
    await Promise.all([flushOutbox(), flushOutbox()]);
    expect(requests.filter((r) => r.type === 'message:send')).toHaveLength(1);
    expect(useChat.getState().convs.c1!.messages[0]).toMatchObject({ client_id: id, state: 'sent', seq: 3 });
  });

  it('marks a refused message as not sent, in words', async () => {
    const { ApiError } = jest.requireActual('@/api/errors');
    jest.spyOn(socket, 'request').mockRejectedValue(new ApiError('blocked', 0));
    sendMessage('c1', 'hello?');
    await flushOutbox();
    expect(useChat.getState().convs.c1!.messages[0]).toMatchObject({
      state: 'failed',
      error: 'You cannot reach this person.',
    });
  });

  it('waits when the server is busy, rather than failing', async () => {
    const { ApiError } = jest.requireActual('@/api/errors');
    jest.spyOn(socket, 'request').mockRejectedValue(new ApiError('unavailable', 0));
    sendMessage('c1', 'later');
    await flushOutbox();
    expect(useChat.getState().convs.c1!.messages[0]!.state).toBe('pending');
  });
});
