// The one WebSocket of this device (docs/websocket.md): opened with the
// access token as a subprotocol, every event with a `ref` answered by an
// ack or an error, renewed with `auth` before the token runs out, and
// reopened with backoff and jitter whenever it drops. After each `hello`
// the listeners run their catch-up (sync, call:active, the outbox).
import { create } from 'zustand';

import { accessToken, refreshAccess } from '../api/client';
import { ApiError } from '../api/errors';
import { signalingUrl } from '../config';
import { useSession } from '../store/session';

export type SocketStatus = 'idle' | 'connecting' | 'online' | 'offline';

export const useSocketStatus = create<{ status: SocketStatus }>(() => ({
  status: 'idle',
}));

export interface ServerEvent {
  type: string;
  data: Record<string, unknown>;
}

type Listener = (ev: ServerEvent) => void;

interface Pending {
  resolve: (data: Record<string, unknown>) => void;
  reject: (err: ApiError) => void;
  timer: ReturnType<typeof setTimeout>;
}

const ACK_TIMEOUT_MS = 15_000;

class FamcallSocket {
  private ws: WebSocket | null = null;
  private wanted = false;
  private attempt = 0;
  private seq = 0;
  private pending = new Map<string, Pending>();
  private listeners = new Set<Listener>();
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private renewTimer: ReturnType<typeof setTimeout> | null = null;

  /** Keep a socket open until stop(). */
  start(): void {
    if (this.wanted) return;
    this.wanted = true;
    this.attempt = 0;
    void this.open();
  }

  stop(): void {
    this.wanted = false;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close(1000);
    }
    this.failPending();
    useSocketStatus.setState({ status: 'idle' });
  }

  /** Reconnect now (the app came back to the foreground, say). */
  kick(): void {
    if (!this.wanted || this.ws) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.attempt = 0;
    void this.open();
  }

  on(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  /** Resolves true once the socket is online (at once if it is), false after `ms`. */
  waitOnline(ms: number): Promise<boolean> {
    if (this.online) return Promise.resolve(true);
    if (!this.wanted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        unsub();
        resolve(false);
      }, ms);
      const unsub = useSocketStatus.subscribe((s) => {
        if (s.status !== 'online') return;
        clearTimeout(timer);
        unsub();
        resolve(true);
      });
    });
  }

  get online(): boolean {
    return useSocketStatus.getState().status === 'online';
  }

  /** Send an event and wait for its ack's data (or its error). */
  request<T = Record<string, unknown>>(type: string, data: object): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const ws = this.ws;
      if (!ws || ws.readyState !== 1 || !this.online) {
        reject(new ApiError('offline', 0));
        return;
      }
      const ref = `r${++this.seq}`;
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new ApiError('unavailable', 0));
      }, ACK_TIMEOUT_MS);
      this.pending.set(ref, {
        resolve: resolve as (d: Record<string, unknown>) => void,
        reject,
        timer,
      });
      ws.send(JSON.stringify({ type, ref, data }));
    });
  }

  /** Fire and forget: no ref, so no ack (typing). */
  notify(type: string, data: object): void {
    const ws = this.ws;
    if (ws && ws.readyState === 1 && this.online) ws.send(JSON.stringify({ type, data }));
  }

  private async open(): Promise<void> {
    if (!this.wanted) return;
    useSocketStatus.setState({ status: 'connecting' });
    let token: string;
    try {
      token = await accessToken();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        this.wanted = false;
        useSocketStatus.setState({ status: 'idle' });
        return;
      }
      this.retryLater();
      return;
    }
    if (!this.wanted) return;
    let ws: WebSocket;
    try {
      ws = new WebSocket(signalingUrl(), ['famcall.v1', `access_token.${token}`]);
    } catch {
      this.retryLater();
      return;
    }
    this.ws = ws;
    ws.onmessage = (e: MessageEvent) => this.onMessage(String(e.data));
    ws.onclose = (e: CloseEvent) => this.onClose(ws, e.code);
    ws.onerror = () => undefined;
  }

  private onMessage(text: string): void {
    let msg: { type?: string; ref?: string | null; data?: unknown; error?: unknown };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return;
    }
    const type = msg.type ?? '';
    if ((type === 'ack' || type === 'error') && typeof msg.ref === 'string') {
      const p = this.pending.get(msg.ref);
      if (!p) return;
      this.pending.delete(msg.ref);
      clearTimeout(p.timer);
      if (type === 'ack') p.resolve((msg.data ?? {}) as Record<string, unknown>);
      else {
        const er = (msg.error ?? {}) as { code?: string; field?: string };
        p.reject(new ApiError(er.code ?? 'internal', 0, er.field ? { field: er.field } : {}));
      }
      return;
    }
    if (type === 'ack' || type === 'error') return;
    const data = (msg.data ?? {}) as Record<string, unknown>;
    if (type === 'hello') {
      this.attempt = 0;
      useSocketStatus.setState({ status: 'online' });
      this.scheduleRenew(Number(data.expires_at));
    }
    if (type === 'session:revoked') {
      this.wanted = false;
      void useSession.getState().clear();
    }
    for (const fn of [...this.listeners]) {
      try {
        fn({ type, data });
      } catch (e) {
        console.warn('socket listener failed', e);
      }
    }
  }

  private onClose(ws: WebSocket, code: number): void {
    if (this.ws !== ws) return;
    this.ws = null;
    this.clearTimers();
    this.failPending();
    for (const fn of [...this.listeners]) fn({ type: 'socket:closed', data: { code } });
    if (!this.wanted) {
      useSocketStatus.setState({ status: 'idle' });
      return;
    }
    if (code === 4001) {
      // the token ran out: a fresh one, then straight back
      refreshAccess().then(
        () => void this.open(),
        () => this.retryLater(),
      );
      return;
    }
    this.retryLater();
  }

  private retryLater(): void {
    if (!this.wanted) return;
    useSocketStatus.setState({ status: 'offline' });
    const base = Math.min(30_000, 1000 * 2 ** Math.min(this.attempt, 5));
    this.attempt++;
    const delay = base / 2 + Math.random() * (base / 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.open();
    }, delay);
  }

  /** Renew the socket's token a minute before it runs out. */
  private scheduleRenew(expiresAt: number): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    if (!Number.isFinite(expiresAt) || expiresAt <= 0) return;
    const ms = Math.max(5_000, expiresAt * 1000 - Date.now() - 60_000);
    this.renewTimer = setTimeout(() => {
      refreshAccess()
        .then((t) => this.request<{ expires_at: number }>('auth', { access_token: t }))
        .then((a) => this.scheduleRenew(Number(a.expires_at)))
        .catch(() => undefined);
    }, ms);
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.retryTimer = null;
    this.renewTimer = null;
  }

  private failPending(): void {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ApiError('offline', 0));
    }
    this.pending.clear();
  }
}

export const socket = new FamcallSocket();
