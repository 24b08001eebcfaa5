import { api, refreshAccess } from '@/api/client';
import { ApiError, errorWords } from '@/api/errors';
import { normalisePhone } from '@/lib/phone';
import { routeFor } from '@/lib/notifications';
import { useSession } from '@/store/session';
import { socket, useSocketStatus } from '@/ws/socket';
import { ME, err, mockApi, signedIn } from './helpers';

describe('error words', () => {
  it('never shows a status or a server code', () => {
    for (const code of ['internal', 'unavailable', 'offline', 'something_new']) {
      const w = errorWords(new ApiError(code, 500));
      expect(w).not.toMatch(/[0-9]{3}|_/);
    }
    expect(errorWords(new TypeError('x'))).toMatch(/went wrong/);
    expect(errorWords(new ApiError('rate_limited', 429, { retryAfter: 600 }))).toBe(
      'Too many tries. Wait 10 minutes and try again.',
    );
  });
});

describe('phone numbers', () => {
  it('become E.164', () => {
    expect(normalisePhone('+44 (7700) 900-123')).toBe('+447700900123');
    expect(normalisePhone('0044 7700 900123')).toBe('+447700900123');
    expect(normalisePhone('12345')).toBeNull();
  });
});

describe('notification taps', () => {
  it('lead to the chat or the call', () => {
    expect(routeFor({ conversation_id: 'c1' })).toBe('/chat/c1');
    expect(routeFor({ call_id: 'k1' })).toBe('/call');
    expect(routeFor({ url: 'famcall://chat/c2' })).toBe('/chat/c2');
    expect(routeFor({})).toBeNull();
  });
});

describe('the session', () => {
  beforeEach(() => signedIn());

  it('renews the access token once on a 401 and retries', async () => {
    let n = 0;
    const calls = mockApi({
      'GET /v1/me': () => (n++ === 0 ? [401, err('unauthorized')] : [200, ME]),
      'POST /v1/auth/refresh': () => [
        200,
        { access_token: 'fresh', refresh_token: 'n'.repeat(43), token_type: 'Bearer', expires_in: 900, user: ME },
      ],
    });
    await expect(api('GET', '/v1/me')).resolves.toEqual(ME);
    expect(calls.map((c) => c.path)).toEqual(['/v1/me', '/v1/auth/refresh', '/v1/me']);
    expect(useSession.getState().refreshToken).toBe('n'.repeat(43));
  });

  it('a 401 about a wrong password is an answer, not a reason to sign out', async () => {
    const calls = mockApi({ 'DELETE /v1/me': () => [401, err('invalid_credentials', { field: 'password' })] });
    await expect(api('DELETE', '/v1/me', { password: 'nope nope' })).rejects.toMatchObject({
      code: 'invalid_credentials',
    });
    expect(calls).toHaveLength(1);
    expect(useSession.getState().status).toBe('signedIn');
  });

  it('renews one token at a time, however many ask', async () => {
    useSession.setState({ accessToken: null });
    const calls = mockApi({
      'POST /v1/auth/refresh': () => [
        200,
        { access_token: 'fresh', refresh_token: 'n'.repeat(43), token_type: 'Bearer', expires_in: 900, user: ME },
      ],
    });
    await Promise.all([refreshAccess(), refreshAccess(), refreshAccess()]);
    expect(calls).toHaveLength(1);
  });

  it('signs out when the refresh token is refused', async () => {
    useSession.setState({ accessToken: null });
    mockApi({ 'POST /v1/auth/refresh': () => [401, err('refresh_token_reused')] });
    await expect(api('GET', '/v1/me')).rejects.toMatchObject({ code: 'refresh_token_reused' });
    expect(useSession.getState().status).toBe('signedOut');
  });
});

describe('the socket', () => {
  class FakeWS {
    static last: FakeWS;
    readyState = 1;
    sent: string[] = [];
    protocols: string[];
    onmessage: ((e: { data: string }) => void) | null = null;
    onclose: ((e: { code: number }) => void) | null = null;
    onerror: (() => void) | null = null;
    constructor(_url: string, protocols: string[]) {
      this.protocols = protocols;
      FakeWS.last = this;
    }
    send(s: string) {
      this.sent.push(s);
    }
    close() {}
    receive(o: object) {
      this.onmessage?.({ data: JSON.stringify(o) });
    }
  }

  beforeEach(() => {
    signedIn();
    (globalThis as unknown as { WebSocket: unknown }).WebSocket = FakeWS;
  });
  afterEach(() => socket.stop());

  it('offers the token as a subprotocol, goes online on hello, matches acks to refs', async () => {
    socket.start();
    await new Promise((r) => setTimeout(r, 0));
    const ws = FakeWS.last;
    expect(ws.protocols).toEqual(['famcall.v1', 'access_token.access']);
    ws.receive({ type: 'hello', data: { user_id: ME.id, expires_at: Date.now() / 1000 + 900, ping_interval: 30 } });
    expect(useSocketStatus.getState().status).toBe('online');
    const p = socket.request('typing', { conversation_id: 'c1', state: 'start' });
    const sent = JSON.parse(ws.sent[0]!);
    expect(sent).toMatchObject({ type: 'typing', data: { conversation_id: 'c1', state: 'start' } });
    ws.receive({ type: 'ack', ref: sent.ref, data: { ok: 1 } });
    await expect(p).resolves.toEqual({ ok: 1 });

    const q = socket.request('message:send', {});
    const ref = JSON.parse(ws.sent[1]!).ref;
    ws.receive({ type: 'error', ref, error: { code: 'not_a_contact', message: 'x' } });
    await expect(q).rejects.toMatchObject({ code: 'not_a_contact' });
  });

  it('fails what waits when the socket drops, and tries again', async () => {
    jest.useFakeTimers();
    socket.start();
    await Promise.resolve();
    await Promise.resolve();
    const ws = FakeWS.last;
    ws.receive({ type: 'hello', data: {} });
    const p = socket.request('sync', {});
    ws.onclose?.({ code: 1001 });
    await expect(p).rejects.toMatchObject({ code: 'offline' });
    expect(useSocketStatus.getState().status).toBe('offline');
    jest.advanceTimersByTime(2000);
    await Promise.resolve();
    await Promise.resolve();
    expect(FakeWS.last).not.toBe(ws);
    jest.useRealTimers();
  });
});
