import { fireEvent, screen, waitFor } from '@testing-library/react-native';

import Settings from '../app/(tabs)/settings';
import Report from '../app/report';
import Blocked from '../app/settings/blocked';
import Profile from '../app/settings/profile';
import { useSession } from '@/store/session';
import { BOB, ME, err, mockApi, renderWithQuery, router, setParams, signedIn } from './helpers';

beforeEach(() => {
  jest.clearAllMocks();
  signedIn();
});

describe('Settings', () => {
  it('shows who is signed in and logs out on the server too', async () => {
    const calls = mockApi({ 'POST /v1/auth/logout': () => [204] });
    renderWithQuery(<Settings />);
    expect(screen.getByText('Ann')).toBeTruthy();
    expect(screen.getByText('@ann · +447700900001')).toBeTruthy();
    fireEvent.press(screen.getByRole('button', { name: 'Log out' }));
    await waitFor(() => expect(router.replace).toHaveBeenCalledWith('/sign-in'));
    expect(calls[0]).toEqual({ method: 'POST', path: '/v1/auth/logout', body: { refresh_token: 'r'.repeat(43) } });
    expect(useSession.getState().status).toBe('signedOut');
  });

  it('leads to the profile, blocked people and the permissions', () => {
    renderWithQuery(<Settings />);
    fireEvent.press(screen.getByRole('button', { name: 'Profile' }));
    fireEvent.press(screen.getByRole('button', { name: 'Blocked people' }));
    fireEvent.press(screen.getByRole('button', { name: 'Camera, microphone and notifications' }));
    expect(router.push.mock.calls.map((c) => c[0])).toEqual([
      '/settings/profile',
      '/settings/blocked',
      '/permissions',
    ]);
  });
});

describe('Profile', () => {
  it('saves only what changed', async () => {
    const calls = mockApi({ 'PATCH /v1/me': (b) => [200, { ...ME, ...(b as object) }] });
    renderWithQuery(<Profile />);
    fireEvent.changeText(screen.getByLabelText('Username'), 'Ann_B');
    fireEvent.press(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(router.back).toHaveBeenCalled());
    expect(calls[0]!.body).toEqual({ username: 'ann_b' });
    expect(useSession.getState().user?.username).toBe('ann_b');
  });

  it('says when a username is taken', async () => {
    mockApi({ 'PATCH /v1/me': () => [409, err('username_taken', { field: 'username' })] });
    renderWithQuery(<Profile />);
    fireEvent.changeText(screen.getByLabelText('Username'), 'bob');
    fireEvent.press(screen.getByRole('button', { name: 'Save' }));
    expect(await screen.findByText('That username is taken. Try another.')).toBeTruthy();
  });
});

describe('Blocked people', () => {
  it('lists them and unblocks', async () => {
    let blocked = true;
    const calls = mockApi({
      'GET /v1/blocks': () => [200, { blocks: blocked ? [{ user: BOB, created_at: 'x' }] : [] }],
      [`DELETE /v1/blocks/${BOB.id}`]: () => {
        blocked = false;
        return [204];
      },
    });
    renderWithQuery(<Blocked />);
    fireEvent.press(await screen.findByRole('button', { name: 'Unblock Bob' }));
    expect(await screen.findByText('You have not blocked anyone.')).toBeTruthy();
    expect(calls.some((c) => c.method === 'DELETE')).toBe(true);
  });
});

describe('Report', () => {
  it('reports a message with a reason', async () => {
    setParams({ user_id: BOB.id, name: 'Bob', message_id: 'm1' });
    const calls = mockApi({ 'POST /v1/reports': () => [201, { id: 'r1' }] });
    renderWithQuery(<Report />);
    expect(screen.getByText('Report a message')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Send report' })).toBeDisabled();
    fireEvent.press(screen.getByRole('radio', { name: 'Spam' }));
    fireEvent.press(screen.getByRole('button', { name: 'Send report' }));
    expect(await screen.findByText('Thank you')).toBeTruthy();
    expect(calls[0]!.body).toEqual({ user_id: BOB.id, reason: 'spam', message_id: 'm1' });
  });
});
