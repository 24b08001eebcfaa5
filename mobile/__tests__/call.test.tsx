import { act, fireEvent, screen, waitFor } from '@testing-library/react-native';

import CallScreen from '../app/call';
import Permissions from '../app/permissions';
import { acceptCall, hangUp, startCall, wireCalls } from '@/calls/engine';
import { IDLE, useCall } from '@/calls/store';
import { useSession } from '@/store/session';
import { socket, useSocketStatus, type ServerEvent } from '@/ws/socket';
import { BOB, mockApi, renderWithQuery, router, setParams, signedIn } from './helpers';

let listeners: ((e: ServerEvent) => void)[] = [];
let requests: { type: string; data: Record<string, unknown> }[] = [];
const emit = async (type: string, data: Record<string, unknown>) => {
  await act(async () => {
    listeners.forEach((l) => l({ type, data }));
  });
};

beforeEach(() => {
  jest.clearAllMocks();
  signedIn();
  useCall.setState({ ...IDLE });
  listeners = [];
  requests = [];
  useSocketStatus.setState({ status: 'online' });
  jest.spyOn(socket, 'on').mockImplementation((fn) => {
    listeners.push(fn);
    return () => undefined;
  });
  jest.spyOn(socket, 'request').mockImplementation(async (type: string, data: object) => {
    requests.push({ type, data: data as Record<string, unknown> });
    if (type === 'call:invite') return { call_id: 'k1', status: 'ringing' } as never;
    return {} as never;
  });
  mockApi({ 'GET /v1/turn': () => [503, { error: { code: 'turn_unavailable' } }] });
});

afterEach(() => jest.restoreAllMocks());

describe('incoming call', () => {
  it('rings with the caller’s name, and declining tells the server', async () => {
    wireCalls();
    renderWithQuery(<CallScreen />);
    await emit('call:invite', { call_id: 'k9', from: BOB, media: 'video' });
    expect(screen.getByText('Video call: calling you…')).toBeTruthy();
    expect(screen.getByText('Bob')).toBeTruthy();
    fireEvent.press(screen.getByRole('button', { name: 'Decline' }));
    expect(await screen.findByText('You declined the call.')).toBeTruthy();
    expect(requests).toContainEqual({ type: 'call:reject', data: { call_id: 'k9' } });
  });

  it('explains the camera and microphone before the first answer', async () => {
    useSession.setState({ permissionsExplained: false });
    wireCalls();
    renderWithQuery(<CallScreen />);
    await emit('call:invite', { call_id: 'k9', from: BOB, media: 'video' });
    fireEvent.press(screen.getByRole('button', { name: 'Accept' }));
    expect(screen.getByText('Camera and microphone')).toBeTruthy();
    expect(requests).toHaveLength(0);
  });

  it('says so when the camera cannot be used, and rejects', async () => {
    wireCalls();
    renderWithQuery(<CallScreen />);
    await emit('call:invite', { call_id: 'k9', from: BOB, media: 'video' });
    await act(() => acceptCall());
    expect(screen.getByTestId('call-outcome')).toHaveTextContent(/could not use your camera/);
    expect(requests.map((r) => r.type)).toEqual(['call:reject']);
  });

  it('a call that stopped ringing elsewhere says how', async () => {
    wireCalls();
    renderWithQuery(<CallScreen />);
    await emit('call:invite', { call_id: 'k9', from: BOB, media: 'audio' });
    expect(screen.getByText('Voice call: calling you…')).toBeTruthy();
    await emit('call:answered_elsewhere', { call_id: 'k9' });
    expect(screen.getByText('You answered on another device.')).toBeTruthy();
  });
});

describe('outgoing call', () => {
  function withCamera() {
    const track = { kind: 'video', enabled: true, stop: jest.fn() };
    const stream = {
      getTracks: () => [track],
      getAudioTracks: () => [],
      getVideoTracks: () => [track],
      toURL: () => 'stream:1',
    };
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const rn = require('react-native-webrtc');
    rn.mediaDevices.getUserMedia.mockResolvedValue(stream);
    return track;
  }

  it('calls, rings, and shows every outcome in words', async () => {
    const track = withCamera();
    wireCalls();
    renderWithQuery(<CallScreen />);
    await act(() => startCall(BOB, 'video'));
    expect(requests[0]).toEqual({ type: 'call:invite', data: { to_user_id: BOB.id, media: 'video' } });
    expect(screen.getByText('Calling…')).toBeTruthy();
    await emit('call:ringing', { call_id: 'k1' });
    expect(screen.getByText('Ringing…')).toBeTruthy();
    await emit('call:timeout', { call_id: 'k1' });
    expect(screen.getByText('Bob did not answer.')).toBeTruthy();
    expect(track.stop).toHaveBeenCalled();
    fireEvent.press(screen.getByRole('button', { name: 'Close' }));
    expect(router.back).toHaveBeenCalled();
  });

  it.each([
    ['call:reject', {}, 'Bob declined the call.'],
    ['call:busy', { reason: 'callee_busy' }, 'Bob is in another call. Try again later.'],
    ['call:end', { reason: 'connection_lost' }, 'The connection was lost.'],
  ])('%s is told as words', async (type, extra, words) => {
    withCamera();
    wireCalls();
    renderWithQuery(<CallScreen />);
    await act(() => startCall(BOB, 'video'));
    await emit(type, { call_id: 'k1', ...extra });
    expect(screen.getByText(words)).toBeTruthy();
  });

  it('hanging up while it rings cancels the call', async () => {
    withCamera();
    wireCalls();
    renderWithQuery(<CallScreen />);
    await act(() => startCall(BOB, 'video'));
    await act(() => hangUp());
    expect(requests.map((r) => r.type)).toEqual(['call:invite', 'call:cancel']);
    expect(screen.getByText('Call cancelled.')).toBeTruthy();
  });

  it('has the in-call controls, labelled', async () => {
    withCamera();
    wireCalls();
    renderWithQuery(<CallScreen />);
    await act(() => startCall(BOB, 'video'));
    for (const name of ['Mute', 'Camera off', 'Swap camera', 'Speaker on', 'End call']) {
      expect(screen.getByRole('button', { name })).toBeTruthy();
    }
    fireEvent.press(screen.getByRole('button', { name: 'Mute' }));
    expect(screen.getByRole('button', { name: 'Unmute' })).toBeTruthy();
    fireEvent.press(screen.getByRole('button', { name: 'Camera off' }));
    expect(useCall.getState().cameraOff).toBe(true);
  });
});

describe('the permission explanation', () => {
  it('is shown before the first call, then the call starts', async () => {
    useSession.setState({ permissionsExplained: false });
    setParams({ id: BOB.id, name: 'Bob', username: 'bob', media: 'audio' });
    renderWithQuery(<Permissions />);
    expect(screen.getByText(/needs your camera/)).toBeTruthy();
    fireEvent.press(screen.getByRole('button', { name: 'Continue' }));
    await waitFor(() => expect(router.replace).toHaveBeenCalledWith('/call'));
    expect(useSession.getState().permissionsExplained).toBe(true);
    expect(useCall.getState().peer?.display_name).toBe('Bob');
  });
});
