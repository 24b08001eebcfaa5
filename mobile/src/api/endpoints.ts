// One function per route the app uses (docs/api.md).
import { APP_VERSION } from '../config';
import { Platform } from 'react-native';
import { api } from './client';
import type {
  Block,
  CallItem,
  Contact,
  Conversation,
  IceServer,
  Message,
  PublicUser,
  ReportReason,
  Tokens,
  User,
} from './types';

const noAuth = { auth: false } as const;

export const auth = {
  otpRequest: (phone: string) =>
    api<{ expires_in: number }>('POST', '/v1/auth/otp/request', { phone }, noAuth),
  otpVerify: (phone: string, code: string, display_name?: string) =>
    api<Tokens>(
      'POST',
      '/v1/auth/otp/verify',
      display_name ? { phone, code, display_name } : { phone, code },
      noAuth,
    ),
  login: (email: string, password: string) =>
    api<Tokens>('POST', '/v1/auth/login', { email, password }, noAuth),
  signup: (b: { email: string; password: string; display_name: string; username: string }) =>
    api<Tokens>('POST', '/v1/auth/signup', b, noAuth),
  logout: (refresh_token: string) =>
    api<void>('POST', '/v1/auth/logout', { refresh_token }, noAuth),
};

export const me = {
  get: () => api<User>('GET', '/v1/me'),
  /** deletes the account: proof by password or by a fresh one-time code */
  remove: (proof: { password: string } | { code: string }) => api<void>('DELETE', '/v1/me', proof),
  askExport: () => api<{ requested_at: string; expires_at: string }>('POST', '/v1/me/export'),
  getExport: () => api<Record<string, unknown>>('GET', '/v1/me/export'),
  update: (patch: { display_name?: string; username?: string; avatar_url?: string | null }) =>
    api<User>('PATCH', '/v1/me', patch),
};

export const legal = {
  get: () =>
    api<{ privacy_url: string | null; terms_url: string | null; version: string | null }>(
      'GET',
      '/v1/legal',
      undefined,
      noAuth,
    ),
};

export const invites = {
  send: (phone: string, name?: string) =>
    api<{ invite?: { id: string; phone: string }; user?: PublicUser }>(
      'POST',
      '/v1/invites',
      name ? { phone, name } : { phone },
    ),
};

export const users = {
  search: (q: string) =>
    api<{ users: PublicUser[] }>('GET', `/v1/users/search?q=${encodeURIComponent(q)}`),
};

export const contacts = {
  list: () => api<{ contacts: Contact[] }>('GET', '/v1/contacts'),
  add: (by: { user_id: string } | { username: string } | { phone: string }) =>
    api<Contact>('POST', '/v1/contacts', by),
  accept: (userId: string) => api<Contact>('POST', `/v1/contacts/${userId}/accept`),
  remove: (userId: string) => api<void>('DELETE', `/v1/contacts/${userId}`),
};

export const blocks = {
  list: () => api<{ blocks: Block[] }>('GET', '/v1/blocks'),
  add: (user_id: string) => api<Block>('POST', '/v1/blocks', { user_id }),
  remove: (userId: string) => api<void>('DELETE', `/v1/blocks/${userId}`),
};

export const reports = {
  send: (b: { user_id: string; reason: ReportReason; text?: string; message_id?: string }) =>
    api<{ id: string }>('POST', '/v1/reports', b),
};

export const conversations = {
  list: () => api<{ conversations: Conversation[] }>('GET', '/v1/conversations'),
  open: (user_id: string) => api<Conversation>('POST', '/v1/conversations', { user_id }),
  messages: (id: string, q: { before_seq?: number; after_seq?: number; limit?: number } = {}) => {
    const p = Object.entries(q)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v}`)
      .join('&');
    return api<{ messages: Message[] }>(
      'GET',
      `/v1/conversations/${id}/messages${p ? `?${p}` : ''}`,
    );
  },
  send: (id: string, client_id: string, body: string) =>
    api<Message>('POST', `/v1/conversations/${id}/messages`, { client_id, body }),
  read: (id: string, up_to_seq: number) =>
    api<void>('POST', `/v1/conversations/${id}/read`, { up_to_seq }),
};

export const calls = {
  history: (before?: string) =>
    api<{ calls: CallItem[] }>(
      'GET',
      `/v1/calls?limit=50${before ? `&before=${encodeURIComponent(before)}` : ''}`,
    ),
  turn: () => api<{ ice_servers: IceServer[]; ttl: number }>('GET', '/v1/turn'),
  stats: (id: string, report: CallReport) => api<void>('POST', `/v1/calls/${id}/stats`, report),
};

export interface CallReport {
  selected_pair?: { local_type: string; remote_type: string };
  rtt_ms?: number;
  packet_loss?: number;
  bitrate_in?: number;
  bitrate_out?: number;
  setup_ms?: { ringing?: number; ice_connected?: number; first_frame?: number };
}

export const devices = {
  register: (b: {
    platform: 'android' | 'ios' | 'web' | 'desktop';
    provider: 'expo' | 'fcm' | 'apns';
    push_token: string;
  }) => api<{ id: string }>('POST', '/v1/devices', b),
  remove: (id: string) => api<void>('DELETE', `/v1/devices/${id}`),
};

/** Unhandled errors go to the server's client-error endpoint; best effort. */
export async function reportClientError(message: string, stack?: string): Promise<void> {
  try {
    await api<void>(
      'POST',
      '/v1/client-errors',
      {
        platform: Platform.OS,
        app_version: APP_VERSION,
        message: message.slice(0, 1000),
        stack: (stack ?? '').slice(0, 8000),
      },
      noAuth,
    );
  } catch {
    // nothing more to do: reporting must never raise another error
  }
}
