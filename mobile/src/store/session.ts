// Who is signed in. The refresh token and the user are kept in secure
// storage so the app opens signed in; the access token stays in memory
// and is renewed from the refresh token (src/api/client.ts).
import { create } from 'zustand';

import type { Tokens, User } from '../api/types';
import * as secure from '../lib/secureStorage';

const KEY = 'famcall.session';
const PREFS = 'famcall.prefs';

export type SessionStatus = 'loading' | 'signedOut' | 'signedIn';

interface Saved {
  refresh_token: string;
  user: User;
}

interface SessionState {
  status: SessionStatus;
  user: User | null;
  accessToken: string | null;
  refreshToken: string | null;
  /** ms since the epoch when the access token stops working */
  accessExpiresAt: number;
  /** the camera / microphone explanation was shown and accepted */
  permissionsExplained: boolean;
  load(): Promise<Saved | null>;
  signIn(tokens: Tokens): Promise<void>;
  setUser(user: User): Promise<void>;
  setPermissionsExplained(): Promise<void>;
  clear(): Promise<void>;
}

export const useSession = create<SessionState>((set, get) => ({
  status: 'loading',
  user: null,
  accessToken: null,
  refreshToken: null,
  accessExpiresAt: 0,
  permissionsExplained: false,

  async load() {
    let saved: Saved | null = null;
    try {
      const raw = await secure.getItem(KEY);
      saved = raw ? (JSON.parse(raw) as Saved) : null;
      const prefs = await secure.getItem(PREFS);
      if (prefs) {
        const p = JSON.parse(prefs) as { permissionsExplained?: boolean };
        set({ permissionsExplained: !!p.permissionsExplained });
      }
    } catch {
      saved = null;
    }
    if (saved?.refresh_token && saved.user) {
      set({
        status: 'signedIn',
        user: saved.user,
        refreshToken: saved.refresh_token,
        accessToken: null,
        accessExpiresAt: 0,
      });
    } else {
      set({ status: 'signedOut' });
    }
    return saved;
  },

  async signIn(t) {
    set({
      status: 'signedIn',
      user: t.user,
      accessToken: t.access_token,
      refreshToken: t.refresh_token,
      accessExpiresAt: Date.now() + t.expires_in * 1000,
    });
    await secure.setItem(KEY, JSON.stringify({ refresh_token: t.refresh_token, user: t.user }));
  },

  async setUser(user) {
    set({ user });
    const rt = get().refreshToken;
    if (rt) await secure.setItem(KEY, JSON.stringify({ refresh_token: rt, user }));
  },

  async setPermissionsExplained() {
    set({ permissionsExplained: true });
    await secure.setItem(PREFS, JSON.stringify({ permissionsExplained: true }));
  },

  async clear() {
    set({
      status: 'signedOut',
      user: null,
      accessToken: null,
      refreshToken: null,
      accessExpiresAt: 0,
    });
    await secure.removeItem(KEY);
  },
}));
