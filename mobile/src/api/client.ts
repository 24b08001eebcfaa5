// HTTP to the famcall API: JSON in and out, the bearer token added, renewed
// once on a 401 (or before it runs out), and every failure turned into an
// ApiError whose code the screens turn into words (errors.ts).
import { apiUrl } from '../config';
import { useSession } from '../store/session';
import { ApiError } from './errors';
import type { Tokens } from './types';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

interface Options {
  auth?: boolean;
  signal?: AbortSignal;
}

const EARLY_MS = 30_000;

async function raw(
  method: Method,
  path: string,
  body: unknown,
  token: string | null,
  signal?: AbortSignal,
): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(apiUrl() + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new ApiError('offline', 0);
  }
}

async function toError(res: Response): Promise<ApiError> {
  let code = res.status >= 500 ? 'unavailable' : 'internal';
  if (res.status === 500) code = 'internal';
  const opts: { field?: string; retryAfter?: number; attemptsLeft?: number } = {};
  try {
    const j = (await res.json()) as {
      error?: { code?: string; field?: string; retry_after?: number; attempts_left?: number };
    };
    if (j.error?.code) code = j.error.code;
    if (j.error?.field) opts.field = j.error.field;
    if (typeof j.error?.retry_after === 'number') opts.retryAfter = j.error.retry_after;
    if (typeof j.error?.attempts_left === 'number') opts.attemptsLeft = j.error.attempts_left;
  } catch {
    // a proxy's HTML error page: keep the code from the status
  }
  if (opts.retryAfter === undefined) {
    const h = Number(res.headers.get('Retry-After'));
    if (h > 0) opts.retryAfter = h;
  }
  return new ApiError(code, res.status, opts);
}

async function parse<T>(res: Response): Promise<T> {
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

let refreshing: Promise<string> | null = null;

/** A fresh access token from the refresh token; one request at a time. */
export function refreshAccess(): Promise<string> {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    const session = useSession.getState();
    const rt = session.refreshToken;
    if (!rt) throw new ApiError('unauthorized', 401);
    const res = await raw('POST', '/v1/auth/refresh', { refresh_token: rt }, null);
    if (!res.ok) {
      const err = await toError(res);
      if (res.status === 401) await session.clear();
      throw err;
    }
    const t = await parse<Tokens>(res);
    await session.signIn(t);
    return t.access_token;
  })();
  refreshing.finally(() => {
    refreshing = null;
  }).catch(() => undefined);
  return refreshing;
}

/** The current access token, renewed first when it is about to run out. */
export async function accessToken(): Promise<string> {
  const s = useSession.getState();
  if (s.accessToken && s.accessExpiresAt - Date.now() > EARLY_MS) return s.accessToken;
  return refreshAccess();
}

export async function api<T>(
  method: Method,
  path: string,
  body?: unknown,
  opts: Options = {},
): Promise<T> {
  const auth = opts.auth ?? true;
  let token = auth ? await accessToken() : null;
  let res = await raw(method, path, body, token, opts.signal);
  if (auth && res.status === 401) {
    // a 401 about the proof sent (a wrong password or code) is an answer,
    // not an expired token
    const first = await toError(res);
    if (first.code !== 'unauthorized') throw first;
    token = await refreshAccess();
    res = await raw(method, path, body, token, opts.signal);
    if (res.status === 401) {
      const again = await toError(res);
      if (again.code === 'unauthorized') await useSession.getState().clear();
      throw again;
    }
  }
  if (!res.ok) throw await toError(res);
  return parse<T>(res);
}
