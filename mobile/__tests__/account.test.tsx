import { fireEvent, screen, waitFor } from '@testing-library/react-native';
import * as Notifications from 'expo-notifications';

import Contacts from '../app/contacts';
import Account from '../app/settings/account';
import { registerForPush } from '@/lib/notifications';
import { useSession } from '@/store/session';
import { BOB, ME, err, mockApi, renderWithQuery, router, signedIn } from './helpers';

beforeEach(() => {
  jest.clearAllMocks();
  signedIn();
});

describe('Your data and account', () => {
  it('deletes the account with a code sent to the phone, then signs out', async () => {
    const calls = mockApi({
      'GET /v1/legal': () => [200, { privacy_url: null, terms_url: null, version: null }],
      'POST /v1/auth/otp/request': () => [202, { expires_in: 300 }],
      'DELETE /v1/me': (b) =>
        (b as { code: string }).code === '654321' ? [204] : [401, err('invalid_code', { attempts_left: 4 })],
    });
    renderWithQuery(<Account />);
    fireEvent.press(screen.getByRole('button', { name: 'Delete my account' }));
    fireEvent.press(screen.getByRole('button', { name: 'Send me a code' }));
    fireEvent.changeText(await screen.findByLabelText('Code'), '111111');
    fireEvent.press(screen.getByRole('button', { name: 'Delete my account for good' }));
    expect(await screen.findByText('That code is not right. 4 tries left.')).toBeTruthy();
    fireEvent.changeText(screen.getByLabelText('Code'), '654321');
    fireEvent.press(screen.getByRole('button', { name: 'Delete my account for good' }));
    await waitFor(() => expect(router.replace).toHaveBeenCalledWith('/sign-in'));
    expect(calls.find((c) => c.path === '/v1/auth/otp/request')?.body).toEqual({ phone: ME.phone });
    expect(useSession.getState().status).toBe('signedOut');
  });

  it('an account without a phone proves it with the password', async () => {
    useSession.setState({ user: { ...ME, phone: null, email: 'ann@example.com' } });
    const calls = mockApi({ 'DELETE /v1/me': () => [401, err('invalid_credentials', { field: 'password' })] });
    renderWithQuery(<Account />);
    fireEvent.press(screen.getByRole('button', { name: 'Delete my account' }));
    fireEvent.changeText(screen.getByLabelText('Password'), 'not it at all');
    fireEvent.press(screen.getByRole('button', { name: 'Delete my account for good' }));
    expect(await screen.findByText('That email and password do not match.')).toBeTruthy();
    expect(calls.find((c) => c.method === 'DELETE')?.body).toEqual({ password: 'not it at all' });
  });

  it('downloads the export, also when it was asked for earlier today', async () => {
    mockApi({
      'POST /v1/me/export': () => [429, err('rate_limited', { retry_after: 3600 })],
      'GET /v1/me/export': () => [
        200,
        { format: 'famcall-export-1', contacts: [{}], conversations: [{}, {}], calls: [] },
      ],
    });
    renderWithQuery(<Account />);
    fireEvent.press(screen.getByRole('button', { name: 'Download my data' }));
    expect(await screen.findByText('Your data is ready: 1 contacts, 2 chats, 0 calls.')).toBeTruthy();
  });
});

describe('invites', () => {
  it('offers an SMS invitation for a number nobody has', async () => {
    const calls = mockApi({
      'GET /v1/contacts': () => [200, { contacts: [] }],
      'GET /v1/users/search': () => [200, { users: [] }],
      'POST /v1/invites': () => [201, { invite: { id: 'i1', phone: '+447700900999' } }],
    });
    renderWithQuery(<Contacts />);
    fireEvent.changeText(screen.getByLabelText('Find someone by username or phone number'), '+44 7700 900999');
    fireEvent.press(screen.getByRole('button', { name: 'Search' }));
    fireEvent.press(await screen.findByRole('button', { name: 'Invite them by SMS' }));
    expect(await screen.findByText(/We sent an invitation to \+447700900999/)).toBeTruthy();
    expect(calls.find((c) => c.path === '/v1/invites')?.body).toEqual({ phone: '+447700900999' });
  });

  it('shows the person when the number turns out to be on famcall', async () => {
    mockApi({
      'GET /v1/contacts': () => [200, { contacts: [] }],
      'GET /v1/users/search': () => [200, { users: [] }],
      'POST /v1/invites': () => [200, { user: BOB }],
    });
    renderWithQuery(<Contacts />);
    fireEvent.changeText(screen.getByLabelText('Find someone by username or phone number'), '+447700900999');
    fireEvent.press(screen.getByRole('button', { name: 'Search' }));
    fireEvent.press(await screen.findByRole('button', { name: 'Invite them by SMS' }));
    expect(await screen.findByRole('button', { name: 'Add Bob' })).toBeTruthy();
  });
});

describe('push', () => {
  it('registers the Expo push token with the server', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const device = require('expo-device') as { isDevice: boolean };
    device.isDevice = true;
    const n = Notifications as jest.Mocked<typeof Notifications>;
    n.getPermissionsAsync.mockResolvedValueOnce({ granted: true } as never);
    n.getExpoPushTokenAsync.mockResolvedValueOnce({ data: 'ExponentPushToken[abc]', type: 'expo' });
    const calls = mockApi({ 'POST /v1/devices': () => [201, { id: 'd1' }] });
    await expect(registerForPush()).resolves.toBe('d1');
    expect(calls[0]!.body).toEqual({ platform: 'ios', provider: 'expo', push_token: 'ExponentPushToken[abc]' });
    device.isDevice = false;
  });

  it('asks nothing of a simulator', async () => {
    const calls = mockApi({});
    await expect(registerForPush()).resolves.toBeNull();
    expect(calls).toHaveLength(0);
  });
});
