// The server's objects, as docs/api.md and docs/websocket.md describe them.

export interface User {
  id: string;
  username: string | null;
  display_name: string;
  avatar_url: string | null;
  email?: string | null;
  phone?: string | null;
  created_at?: string;
}

export type PublicUser = Pick<User, 'id' | 'username' | 'display_name' | 'avatar_url'>;

export interface Tokens {
  access_token: string;
  refresh_token: string;
  token_type: 'Bearer';
  expires_in: number;
  user: User;
  new_user?: boolean;
}

export interface Contact {
  user: PublicUser;
  status: 'pending' | 'accepted';
  direction: 'outgoing' | 'incoming';
  created_at: string;
  accepted_at: string | null;
}

export interface Message {
  id: string;
  conversation_id: string;
  seq: number;
  sender_id: string;
  client_id: string;
  body: string;
  sent_at: string;
  delivered_at: string | null;
  read_at: string | null;
}

export interface Conversation {
  id: string;
  kind: '1:1';
  peer: PublicUser;
  last_seq: number;
  last_read_seq: number;
  unread_count: number;
  last_message: Message | null;
  created_at: string;
}

export type CallStatus =
  | 'ringing'
  | 'accepted'
  | 'rejected'
  | 'cancelled'
  | 'missed'
  | 'busy'
  | 'ended';

export interface CallItem {
  call_id: string;
  caller_id: string;
  callee_id: string;
  media: 'video' | 'audio';
  status: CallStatus;
  created_at: string;
  answered_at: string | null;
  ended_at: string | null;
  end_reason: string | null;
  direction: 'outgoing' | 'incoming';
  peer: PublicUser;
  missed: boolean;
}

export interface Block {
  user: PublicUser;
  created_at: string;
}

export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

export type ReportReason =
  | 'spam'
  | 'harassment'
  | 'inappropriate'
  | 'impersonation'
  | 'other';
