// The call on screen: one at a time, as the server allows.
import { create } from 'zustand';

import type { PublicUser } from '../api/types';

export type CallPhase =
  | 'idle'
  | 'outgoing'
  | 'incoming'
  | 'connecting'
  | 'active'
  | 'reconnecting'
  | 'ended';

export interface CallState {
  phase: CallPhase;
  callId: string | null;
  role: 'caller' | 'callee' | null;
  peer: PublicUser | null;
  media: 'video' | 'audio';
  /** the callee has a device online and it rings */
  ringing: boolean;
  /** what ended the call, in words */
  outcome: string | null;
  muted: boolean;
  cameraOff: boolean;
  speaker: boolean;
  facing: 'user' | 'environment';
  localStream: MediaStream | null;
  remoteStream: MediaStream | null;
  startedAt: number | null;
}

export const IDLE: CallState = {
  phase: 'idle',
  callId: null,
  role: null,
  peer: null,
  media: 'video',
  ringing: false,
  outcome: null,
  muted: false,
  cameraOff: false,
  speaker: true,
  facing: 'user',
  localStream: null,
  remoteStream: null,
  startedAt: null,
};

export const useCall = create<CallState>(() => ({ ...IDLE }));

export function inCall(phase: CallPhase): boolean {
  return phase !== 'idle' && phase !== 'ended';
}
