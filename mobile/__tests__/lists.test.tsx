import { fireEvent, screen, waitFor } from '@testing-library/react-native';

import Calls, { describeCall } from '../app/(tabs)/calls';
import Chats from '../app/(tabs)/index';
import Contacts, { searchQuery } from '../app/contacts';
import type { CallItem, Conversation } from '@/api/types';
import { useCall } from '@/calls/store';
import { BOB, ME, err, mockApi, offline, renderWithQuery, router, signedIn } from './helpers';

const CONV: Conversation = {
  id: 'c1',
  kind: '1:1',
  peer: BOB,
  last_seq: 3,
  last_read_seq: 1,
  unread_count: 2,
  last_message: {
    id: 'm3',
    conversation_id: 'c1',
    seq: 3,
    sender_id: BOB.id,
    client_id: 'k3',
    body: 'See you Sunday',
    sent_at: new Date().toISOString(),
    delivered_at: null,
    read_at: null,
  },
  created_at: '2026-01-01T00:00:00Z',
};

const CALL: CallItem = {
  call_id: 'k1',
  caller_id: BOB.id,
  callee_id: ME.id,
  media: 'video',
  status: 'missed',
  created_at: new Date().toISOString(),
  answered_at: null,
  ended_at: null,
  end_reason: 'timeout',
  direction: 'incoming',
  peer: BOB,
  missed: true,
};

beforeEach(() => {
  jest.clearAllMocks();
  signedIn();
});

describe('Chats', () => {
  it('lists conversations with the last message and the unread count', async () => {
    mockApi({ 'GET /v1/conversations': () => [200, { conversations: [CONV] }] });
    renderWithQuery(<Chats />);
    expect(await screen.findByText('See you Sunday')).toBeTruthy();
    expect(screen.getByLabelText('Chat with Bob, 2 unread')).toBeTruthy();
    expect(screen.getByTestId('unread-badge')).toHaveTextContent('2');
    fireEvent.press(screen.getByLabelText('Chat with Bob, 2 unread'));
    expect(router.push).toHaveBeenCalledWith('/chat/c1');
  });

  it('says so when there are none yet', async () => {
    mockApi({ 'GET /v1/conversations': () => [200, { conversations: [] }] });
    renderWithQuery(<Chats />);
    expect(await screen.findByText(/No chats yet/)).toBeTruthy();
  });

  it('shows the server being down in words, with a retry', async () => {
    mockApi({ 'GET /v1/conversations': () => [503, err('unavailable')] });
    renderWithQuery(<Chats />);
    expect(await screen.findByText(/not reachable right now/, {}, { timeout: 4000 })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Try again' })).toBeTruthy();
  });
});

describe('Contacts', () => {
  it('reads the search box as a username or a phone number', () => {
    expect(searchQuery('@Bob')).toBe('bob');
    expect(searchQuery('+44 7700 900123')).toBe('+447700900123');
    expect(searchQuery('07700 900123')).toBeNull();
    expect(searchQuery('b')).toBeNull();
  });

  it('finds someone and asks them', async () => {
    const calls = mockApi({
      'GET /v1/contacts': () => [200, { contacts: [] }],
      'GET /v1/users/search': () => [200, { users: [BOB] }],
      'POST /v1/contacts': () => [201, { user: BOB, status: 'pending', direction: 'outgoing' }],
    });
    renderWithQuery(<Contacts />);
    fireEvent.changeText(screen.getByLabelText('Find someone by username or phone number'), 'bo');
    fireEvent.press(screen.getByRole('button', { name: 'Search' }));
    fireEvent.press(await screen.findByRole('button', { name: 'Add Bob' }));
    await waitFor(() => expect(calls.find((c) => c.method === 'POST')?.body).toEqual({ user_id: BOB.id }));
    expect(calls.find((c) => c.path.startsWith('/v1/users/search'))?.path).toBe('/v1/users/search?q=bo');
  });

  it('accepts a request and opens a chat with a contact', async () => {
    let accepted = false;
    const calls = mockApi({
      'GET /v1/contacts': () => [
        200,
        { contacts: [{ user: BOB, status: accepted ? 'accepted' : 'pending', direction: 'incoming' }] },
      ],
      [`POST /v1/contacts/${BOB.id}/accept`]: () => {
        accepted = true;
        return [200, { user: BOB, status: 'accepted' }];
      },
      'POST /v1/conversations': () => [201, CONV],
    });
    renderWithQuery(<Contacts />);
    fireEvent.press(await screen.findByRole('button', { name: 'Accept Bob' }));
    fireEvent.press(await screen.findByRole('button', { name: 'Message Bob' }));
    await waitFor(() => expect(router.push).toHaveBeenCalledWith('/chat/c1'));
    expect(calls.some((c) => c.path === `/v1/contacts/${BOB.id}/accept`)).toBe(true);
  });

  it('says when nobody matches', async () => {
    mockApi({
      'GET /v1/contacts': () => [200, { contacts: [] }],
      'GET /v1/users/search': () => [200, { users: [] }],
    });
    renderWithQuery(<Contacts />);
    fireEvent.changeText(screen.getByLabelText('Find someone by username or phone number'), 'zz');
    fireEvent.press(screen.getByRole('button', { name: 'Search' }));
    expect(await screen.findByText(/Nobody found/)).toBeTruthy();
  });
});

describe('Calls', () => {
  it('describes calls in words', () => {
    expect(describeCall(CALL)).toBe('Missed video call');
    expect(
      describeCall({
        ...CALL,
        missed: false,
        status: 'ended',
        direction: 'outgoing',
        answered_at: '2026-01-01T10:00:00Z',
        ended_at: '2026-01-01T10:02:05Z',
      }),
    ).toBe('Outgoing video call, 2:05');
    expect(describeCall({ ...CALL, missed: false, status: 'rejected' })).toBe('Declined');
  });

  it('lists history with missed calls and calls back', async () => {
    mockApi({ 'GET /v1/calls': () => [200, { calls: [CALL] }] });
    renderWithQuery(<Calls />);
    expect(await screen.findByText(/Missed video call/)).toBeTruthy();
    fireEvent.press(screen.getByRole('button', { name: 'Call Bob back' }));
    expect(router.push).toHaveBeenCalledWith('/call');
    expect(useCall.getState().peer?.id).toBe(BOB.id);
  });

  it('works offline with words, not a status', async () => {
    offline();
    renderWithQuery(<Calls />);
    expect(await screen.findByText(/offline/, {}, { timeout: 4000 })).toBeTruthy();
  });
});
