import { fireEvent, screen, waitFor } from '@testing-library/react-native';

import EmailSignIn from '../app/(auth)/email';
import SignIn from '../app/(auth)/sign-in';
import Verify from '../app/(auth)/verify';
import { useSession } from '@/store/session';
import { ME, err, mockApi, offline, renderWithQuery, router, setParams } from './helpers';

const TOKENS = {
  access_token: 'a.b.c',
  refresh_token: 'x'.repeat(43),
  token_type: 'Bearer',
  expires_in: 900,
  user: ME,
};

beforeEach(() => {
  jest.clearAllMocks();
  useSession.setState({ status: 'signedOut', user: null, accessToken: null, refreshToken: null });
});

describe('sign in by phone', () => {
  it('refuses a number without its country code, in words', async () => {
    const calls = mockApi({});
    renderWithQuery(<SignIn />);
    fireEvent.changeText(screen.getByLabelText('Phone number'), '07700 900123');
    fireEvent.press(screen.getByRole('button', { name: 'Send me a code' }));
    expect(await screen.findByText(/country code/)).toBeTruthy();
    expect(calls).toHaveLength(0);
  });

  it('sends the code to the E.164 number and moves on to the code', async () => {
    const calls = mockApi({ 'POST /v1/auth/otp/request': () => [202, { expires_in: 300 }] });
    renderWithQuery(<SignIn />);
    fireEvent.changeText(screen.getByLabelText('Phone number'), '+44 7700 900123');
    fireEvent.press(screen.getByRole('button', { name: 'Send me a code' }));
    await waitFor(() =>
      expect(router.push).toHaveBeenCalledWith({ pathname: '/verify', params: { phone: '+447700900123' } }),
    );
    expect(calls[0]!.body).toEqual({ phone: '+447700900123' });
  });

  it('says how long to wait when rate limited', async () => {
    mockApi({ 'POST /v1/auth/otp/request': () => [429, err('rate_limited', { retry_after: 40 })] });
    renderWithQuery(<SignIn />);
    fireEvent.changeText(screen.getByLabelText('Phone number'), '+447700900123');
    fireEvent.press(screen.getByRole('button', { name: 'Send me a code' }));
    expect(await screen.findByText('Too many tries. Wait 40 seconds and try again.')).toBeTruthy();
  });

  it('says when the phone is offline', async () => {
    offline();
    renderWithQuery(<SignIn />);
    fireEvent.changeText(screen.getByLabelText('Phone number'), '+447700900123');
    fireEvent.press(screen.getByRole('button', { name: 'Send me a code' }));
    expect(await screen.findByText(/offline/)).toBeTruthy();
  });
});

describe('the code', () => {
  beforeEach(() => setParams({ phone: '+447700900123' }));

  it('tells how many tries are left after a wrong code', async () => {
    mockApi({ 'POST /v1/auth/otp/verify': () => [401, err('invalid_code', { field: 'code', attempts_left: 3 })] });
    renderWithQuery(<Verify />);
    fireEvent.changeText(screen.getByLabelText('Code'), '123456');
    fireEvent.press(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByText('That code is not right. 3 tries left.')).toBeTruthy();
  });

  it('asks a new user for a name, then signs in and keeps the session', async () => {
    const calls = mockApi({
      'POST /v1/auth/otp/verify': (b) =>
        (b as { display_name?: string }).display_name
          ? [200, { ...TOKENS, new_user: true }]
          : [422, err('missing_field', { field: 'display_name' })],
    });
    renderWithQuery(<Verify />);
    fireEvent.changeText(screen.getByLabelText('Code'), '123456');
    fireEvent.press(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByText('Welcome to famcall')).toBeTruthy();
    fireEvent.changeText(screen.getByLabelText('Your name'), 'Ann');
    fireEvent.press(screen.getByRole('button', { name: 'Continue' }));
    await waitFor(() => expect(router.replace).toHaveBeenCalledWith('/'));
    expect(calls[1]!.body).toEqual({ phone: '+447700900123', code: '123456', display_name: 'Ann' });
    expect(useSession.getState().status).toBe('signedIn');
    expect(useSession.getState().refreshToken).toBe(TOKENS.refresh_token);
  });
});

describe('email and password', () => {
  it('shows a wrong password in words', async () => {
    mockApi({ 'POST /v1/auth/login': () => [401, err('invalid_credentials')] });
    renderWithQuery(<EmailSignIn />);
    fireEvent.changeText(screen.getByLabelText('Email'), 'ann@example.com');
    fireEvent.changeText(screen.getByLabelText('Password'), 'wrong password');
    fireEvent.press(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByText('That email and password do not match.')).toBeTruthy();
  });

  it('creates an account', async () => {
    const calls = mockApi({ 'POST /v1/auth/signup': () => [201, TOKENS] });
    renderWithQuery(<EmailSignIn />);
    fireEvent.press(screen.getByRole('button', { name: 'Create an account instead' }));
    fireEvent.changeText(screen.getByLabelText('Email'), 'ann@example.com');
    fireEvent.changeText(screen.getByLabelText('Password'), 'a long secret');
    fireEvent.changeText(screen.getByLabelText('Your name'), 'Ann');
    fireEvent.changeText(screen.getByLabelText('Username'), 'Ann');
    fireEvent.press(screen.getByRole('button', { name: 'Create account' }));
    await waitFor(() => expect(router.replace).toHaveBeenCalledWith('/'));
    expect(calls[0]!.body).toEqual({
      email: 'ann@example.com',
      password: 'a long secret',
      display_name: 'Ann',
      username: 'ann',
    });
  });
});
