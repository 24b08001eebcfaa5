// What the screen tests share: a fake server behind fetch, a signed-in
// session, the router's recorded calls, and a render with TanStack Query.
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { render } from '@testing-library/react-native';
import type { ReactElement } from 'react';

import type { User } from '@/api/types';
import { useSession } from '@/store/session';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const routerMock = require('expo-router') as {
  __router: Record<'push' | 'replace' | 'back', jest.Mock>;
  __state: { params: Record<string, string> };
};

export const router = routerMock.__router;

export function setParams(p: Record<string, string>): void {
  routerMock.__state.params = p;
}

type Handler = (body: unknown, path: string) => [number, unknown?];

export interface Call {
  method: string;
  path: string;
  body: unknown;
}

/** fetch answers from `routes` ("METHOD /path", query ignored); the rest 404. */
export function mockApi(routes: Record<string, Handler>): Call[] {
  const calls: Call[] = [];
  globalThis.fetch = jest.fn(async (url: string, init: RequestInit) => {
    const full = url.replace(/^https?:\/\/[^/]+/, '');
    const path = full.split('?')[0]!;
    const method = init.method ?? 'GET';
    const body = init.body ? JSON.parse(String(init.body)) : undefined;
    calls.push({ method, path: full, body });
    const h = routes[`${method} ${path}`];
    const [status, out] = h ? h(body, full) : [404, { error: { code: 'not_found', message: 'x' } }];
    return {
      ok: status < 300,
      status,
      headers: { get: () => null },
      json: async () => out,
      text: async () => (out === undefined ? '' : JSON.stringify(out)),
    } as unknown as Response;
  }) as unknown as typeof fetch;
  return calls;
}

export function offline(): void {
  globalThis.fetch = jest.fn(async () => {
    throw new TypeError('Network request failed');
  }) as unknown as typeof fetch;
}

export const ME: User = {
  id: '11111111-1111-4111-8111-111111111111',
  username: 'ann',
  display_name: 'Ann',
  avatar_url: null,
  email: null,
  phone: '+447700900001',
  created_at: '2026-01-01T00:00:00Z',
};

export const BOB = {
  id: '22222222-2222-4222-8222-222222222222',
  username: 'bob',
  display_name: 'Bob',
  avatar_url: null,
};

export function signedIn(): void {
  useSession.setState({
    status: 'signedIn',
    user: ME,
    accessToken: 'access',
    refreshToken: 'r'.repeat(43),
    accessExpiresAt: Date.now() + 3_600_000,
    permissionsExplained: true,
  });
}

export function renderWithQuery(ui: ReactElement) {
  const qc = new QueryClient({
    defaultOptions: { queries: { retry: false, gcTime: 0 }, mutations: { retry: false } },
  });
  return render(<QueryClientProvider client={qc}>{ui}</QueryClientProvider>);
}

export function err(code: string, extra: Record<string, unknown> = {}) {
  return { error: { code, message: 'server words', ...extra } };
}
