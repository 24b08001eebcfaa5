// The call engine: the signalling of docs/websocket.md ("Calls", "Relay")
// driven by the socket's events, and one RTCPeerConnection per call. The
// caller offers once the callee accepts; each side sends its candidates
// only after its offer or answer is acked, and keeps the candidates that
// arrive before the remote description until it is set. A side whose
// socket came back sends call:resume; the side that hears call:resume
// renegotiates with an ICE restart.
import { ApiError, errorWords } from '../api/errors';
import { calls as callsApi, type CallReport } from '../api/endpoints';
import type { IceServer, PublicUser } from '../api/types';
import { socket, type ServerEvent } from '../ws/socket';
import { IDLE, inCall, useCall, type CallState } from './store';
import { getUserMedia, isWeb, peerConnectionClass } from './webrtc';

interface Marks {
  invited: number;
  ringing?: number;
  iceConnected?: number;
  firstFrame?: number;
}

let pc: RTCPeerConnection | null = null;
let remoteQueue: RTCIceCandidateInit[] = [];
let localQueue: RTCIceCandidate[] = [];
let canTrickle = false;
let marks: Marks = { invited: 0 };
let cancelWanted = false;
let frameTimer: ReturnType<typeof setInterval> | null = null;
let onChange: ((s: CallState) => void) | null = null;
/** events for a call whose invite is not acked yet: call:ringing may come first */
let early: ServerEvent[] = [];

const set = (p: Partial<CallState>) => useCall.setState(p);
const get = () => useCall.getState();
const name = () => get().peer?.display_name ?? 'They';

/** For the browser tests: the live connection and its counters. */
function exposeForTests(): void {
  if (!isWeb || typeof window === 'undefined') return;
  (window as unknown as { __famcallCall?: unknown }).__famcallCall = {
    state: () => ({ phase: get().phase, callId: get().callId, outcome: get().outcome }),
    stats: () => (pc ? pc.getStats() : Promise.resolve(null)),
  };
}

export function setCallListener(fn: ((s: CallState) => void) | null): void {
  onChange = fn;
}

async function iceServers(): Promise<IceServer[]> {
  try {
    return (await callsApi.turn()).ice_servers;
  } catch {
    return [];
  }
}

async function localMedia(media: 'video' | 'audio'): Promise<MediaStream> {
  const stream = await getUserMedia({
    audio: true,
    video: media === 'video' ? { facingMode: get().facing } : false,
  });
  set({ localStream: stream });
  return stream;
}

function sendCandidate(c: RTCIceCandidate): void {
  const callId = get().callId;
  if (!callId) return;
  socket
    .request('webrtc:ice', {
      call_id: callId,
      candidate: c.candidate,
      ...(c.sdpMid != null ? { sdp_mid: c.sdpMid } : {}),
      ...(c.sdpMLineIndex != null ? { sdp_mline_index: c.sdpMLineIndex } : {}),
    })
    .catch(() => undefined);
}

function startTrickle(): void {
  canTrickle = true;
  const q = localQueue;
  localQueue = [];
  q.forEach(sendCandidate);
}

async function createPeer(): Promise<RTCPeerConnection> {
  const PC = peerConnectionClass();
  const conn = new PC({ iceServers: (await iceServers()) as RTCIceServer[] });
  pc = conn;
  exposeForTests();
  const stream = get().localStream;
  stream?.getTracks().forEach((t) => conn.addTrack(t, stream));
  conn.addEventListener('icecandidate', (e: RTCPeerConnectionIceEvent) => {
    if (!e.candidate || !e.candidate.candidate) return;
    if (canTrickle) sendCandidate(e.candidate);
    else localQueue.push(e.candidate);
  });
  conn.addEventListener('track', (e: RTCTrackEvent) => {
    const remote = e.streams[0] ?? get().remoteStream ?? null;
    if (remote && !remote.getTracks().includes(e.track)) remote.addTrack(e.track);
    set({ remoteStream: remote });
    watchFirstFrame();
  });
  conn.addEventListener('iceconnectionstatechange', () => {
    const st = conn.iceConnectionState;
    if (st === 'connected' || st === 'completed') {
      marks.iceConnected ??= Date.now();
      set({ phase: 'active', startedAt: get().startedAt ?? Date.now() });
    } else if (st === 'disconnected' || st === 'failed') {
      if (inCall(get().phase)) set({ phase: 'reconnecting' });
      if (st === 'failed' && get().role === 'caller') void restartIce();
    }
  });
  return conn;
}

function watchFirstFrame(): void {
  if (frameTimer) return;
  frameTimer = setInterval(() => {
    if (!pc) return;
    pc.getStats()
      .then((report) => {
        report.forEach((s: { type?: string; kind?: string; framesDecoded?: number }) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video' && (s.framesDecoded ?? 0) > 0) {
            marks.firstFrame ??= Date.now();
          }
        });
        if (marks.firstFrame && frameTimer) {
          clearInterval(frameTimer);
          frameTimer = null;
        }
      })
      .catch(() => undefined);
  }, 250);
}

async function flushRemote(): Promise<void> {
  const q = remoteQueue;
  remoteQueue = [];
  for (const c of q) await pc?.addIceCandidate(c).catch(() => undefined);
}

async function sendOffer(iceRestart = false): Promise<void> {
  if (!pc) return;
  const offer = await pc.createOffer(iceRestart ? { iceRestart: true } : {});
  await pc.setLocalDescription(offer);
  await socket.request('webrtc:offer', { call_id: get().callId, sdp: offer.sdp });
  startTrickle();
}

async function restartIce(): Promise<void> {
  try {
    await sendOffer(true);
  } catch {
    // the socket is down: call:resume will bring the renegotiation
  }
}

function reset(): void {
  if (frameTimer) clearInterval(frameTimer);
  frameTimer = null;
  pc = null;
  remoteQueue = [];
  localQueue = [];
  canTrickle = false;
  cancelWanted = false;
  early = [];
}

async function collectReport(conn: RTCPeerConnection): Promise<CallReport> {
  const report: CallReport = {};
  try {
    const stats = await conn.getStats();
    const byId = new Map<string, Record<string, unknown>>();
    stats.forEach((s: Record<string, unknown>) => byId.set(String(s.id), s));
    let pair: Record<string, unknown> | undefined;
    let lost = 0;
    let received = 0;
    let bytesIn = 0;
    let bytesOut = 0;
    byId.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        pair = byId.get(String(s.selectedCandidatePairId));
      }
      if (s.type === 'inbound-rtp') {
        lost += Number(s.packetsLost ?? 0);
        received += Number(s.packetsReceived ?? 0);
        bytesIn += Number(s.bytesReceived ?? 0);
      }
      if (s.type === 'outbound-rtp') bytesOut += Number(s.bytesSent ?? 0);
    });
    if (!pair) {
      byId.forEach((s) => {
        if (s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated) pair ??= s;
      });
    }
    if (pair) {
      const l = byId.get(String(pair.localCandidateId));
      const r = byId.get(String(pair.remoteCandidateId));
      if (l?.candidateType && r?.candidateType) {
        report.selected_pair = {
          local_type: String(l.candidateType),
          remote_type: String(r.candidateType),
        };
      }
      if (typeof pair.currentRoundTripTime === 'number') {
        report.rtt_ms = Math.round(pair.currentRoundTripTime * 1000);
      }
    }
    if (received + lost > 0) report.packet_loss = Math.max(0, lost) / (received + lost);
    const secs = Math.max(1, (Date.now() - (marks.iceConnected ?? marks.invited)) / 1000);
    report.bitrate_in = Math.min(1e9, Math.round((bytesIn * 8) / secs));
    report.bitrate_out = Math.min(1e9, Math.round((bytesOut * 8) / secs));
  } catch {
    // a report without the connection's figures is still worth sending
  }
  const setup: NonNullable<CallReport['setup_ms']> = {};
  const clamp = (t?: number) =>
    t === undefined ? undefined : Math.min(600000, Math.max(0, t - marks.invited));
  if (marks.ringing) setup.ringing = clamp(marks.ringing);
  if (marks.iceConnected) setup.ice_connected = clamp(marks.iceConnected);
  if (marks.firstFrame) setup.first_frame = clamp(marks.firstFrame);
  if (Object.keys(setup).length) report.setup_ms = setup;
  return report;
}

/** Close everything and show why the call ended. */
function finish(outcome: string): void {
  const conn = pc;
  const { callId, localStream, phase } = get();
  const answered = !!marks.iceConnected;
  reset();
  if (conn && callId && answered) {
    // the quality report: the server takes it once the call has ended
    void collectReport(conn).then((r) => {
      conn.close();
      return callsApi.stats(callId, r).catch(() => undefined);
    });
  } else {
    conn?.close();
  }
  localStream?.getTracks().forEach((t) => t.stop());
  if (phase === 'idle') return;
  set({ phase: 'ended', outcome, localStream: null, remoteStream: null });
}

/** The call screen was closed after the end. */
export function dismiss(): void {
  if (!inCall(get().phase)) useCall.setState({ ...IDLE });
}

function mediaError(e: unknown): string {
  if (e instanceof ApiError) return errorWords(e);
  return 'famcall could not use your camera or microphone. Allow them in your settings and try again.';
}

// -- what the person does --------------------------------------------------

export async function startCall(peer: PublicUser, media: 'video' | 'audio'): Promise<void> {
  if (inCall(get().phase)) return;
  reset();
  marks = { invited: Date.now() };
  useCall.setState({ ...IDLE, phase: 'outgoing', role: 'caller', peer, media });
  try {
    await localMedia(media);
  } catch (e) {
    finish(mediaError(e));
    return;
  }
  if (cancelWanted || get().phase !== 'outgoing') return finish('Call cancelled.');
  // a call placed as the app opens waits for its socket a little
  await socket.waitOnline(10_000);
  try {
    const ack = await socket.request<{
      call_id: string;
      status: string;
      reason?: string;
      glare?: boolean;
    }>('call:invite', { to_user_id: peer.id, media });
    set({ callId: ack.call_id });
    const before = early;
    early = [];
    for (const ev of before) if (ev.data.call_id === ack.call_id) await onEvent(ev);
    if (ack.status === 'busy') {
      finish(
        ack.reason === 'caller_busy'
          ? 'You are already in a call on another device.'
          : `${name()} is in another call. Try again later.`,
      );
      return;
    }
    if (ack.status === 'accepted' && ack.glare) {
      // they called us at the same moment: ours answered theirs
      set({ role: 'callee', phase: 'connecting' });
      await createPeer();
      return;
    }
    if (cancelWanted) await hangUp();
  } catch (e) {
    finish(errorWords(e));
  }
}

export async function acceptCall(): Promise<void> {
  const { callId, media, phase } = get();
  if (phase !== 'incoming' || !callId) return;
  set({ phase: 'connecting' });
  try {
    await localMedia(media);
  } catch (e) {
    socket.request('call:reject', { call_id: callId }).catch(() => undefined);
    finish(mediaError(e));
    return;
  }
  try {
    await socket.waitOnline(10_000);
    await socket.request('call:accept', { call_id: callId });
    await createPeer();
  } catch (e) {
    finish(
      e instanceof ApiError && e.code === 'answered_elsewhere'
        ? 'You answered on another device.'
        : errorWords(e),
    );
  }
}

export async function rejectCall(): Promise<void> {
  const { callId, phase } = get();
  if (phase !== 'incoming' || !callId) return;
  finish('You declined the call.');
  await socket.request('call:reject', { call_id: callId }).catch(() => undefined);
}

export async function hangUp(): Promise<void> {
  const { callId, phase, role } = get();
  if (!inCall(phase)) return;
  if (phase === 'incoming') return rejectCall();
  if (!callId) {
    cancelWanted = true;
    return;
  }
  const ringing = phase === 'outgoing' && role === 'caller';
  const conn = pc;
  const report = conn && marks.iceConnected ? await collectReport(conn) : null;
  marks.iceConnected = undefined; // reported below, not by finish()
  finish(ringing ? 'Call cancelled.' : 'Call ended.');
  try {
    await socket.request(
      ringing ? 'call:cancel' : 'call:end',
      ringing ? { call_id: callId } : { call_id: callId, reason: 'hangup' },
    );
  } catch {
    // it ends here whatever the server heard: the server sweeps lost calls
  }
  // after the ack: the server takes a report once the call has ended
  if (report) await callsApi.stats(callId, report).catch(() => undefined);
}

export function toggleMute(): void {
  const muted = !get().muted;
  get().localStream?.getAudioTracks().forEach((t) => (t.enabled = !muted));
  set({ muted });
}

export function toggleCamera(): void {
  const cameraOff = !get().cameraOff;
  get().localStream?.getVideoTracks().forEach((t) => (t.enabled = !cameraOff));
  set({ cameraOff });
}

export function toggleSpeaker(): void {
  set({ speaker: !get().speaker });
}

export async function swapCamera(): Promise<void> {
  const facing = get().facing === 'user' ? 'environment' : 'user';
  const local = get().localStream;
  const old = local?.getVideoTracks()[0];
  if (!local || !old) return;
  try {
    const fresh = await getUserMedia({ video: { facingMode: facing }, audio: false });
    const track = fresh.getVideoTracks()[0];
    if (!track) return;
    track.enabled = !get().cameraOff;
    const sender = pc?.getSenders().find((s) => s.track?.kind === 'video');
    await sender?.replaceTrack(track);
    local.removeTrack(old);
    old.stop();
    local.addTrack(track);
    set({ facing, localStream: local });
  } catch {
    // one camera only: nothing to swap to
  }
}

// -- what the server says --------------------------------------------------

async function onEvent(ev: ServerEvent): Promise<void> {
  const d = ev.data;
  const state = get();
  const mine = typeof d.call_id === 'string' && d.call_id === state.callId;
  if (!mine && state.phase === 'outgoing' && !state.callId && ev.type !== 'call:invite' && d.call_id) {
    early.push(ev);
    return;
  }
  switch (ev.type) {
    case 'hello':
      return afterHello();
    case 'socket:closed':
      if (state.phase === 'active' || state.phase === 'connecting') set({ phase: 'reconnecting' });
      return;
    case 'call:invite': {
      if (inCall(state.phase)) return;
      reset();
      marks = { invited: Date.now() };
      useCall.setState({
        ...IDLE,
        phase: 'incoming',
        role: 'callee',
        callId: String(d.call_id),
        peer: d.from as PublicUser,
        media: d.media === 'audio' ? 'audio' : 'video',
      });
      return;
    }
    case 'call:ringing':
      if (mine) {
        marks.ringing ??= Date.now();
        set({ ringing: true });
      }
      return;
    case 'call:accept':
      if (!mine || state.role !== 'caller') return;
      set({ phase: 'connecting' });
      try {
        await createPeer();
        await sendOffer();
      } catch (e) {
        await hangUp();
        set({ outcome: errorWords(e) });
      }
      return;
    case 'webrtc:offer':
      if (!mine || !pc) return;
      await pc.setRemoteDescription({ type: 'offer', sdp: String(d.sdp) });
      await flushRemote();
      {
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        await socket.request('webrtc:answer', { call_id: state.callId, sdp: answer.sdp });
        startTrickle();
      }
      return;
    case 'webrtc:answer':
      if (!mine || !pc) return;
      await pc.setRemoteDescription({ type: 'answer', sdp: String(d.sdp) });
      await flushRemote();
      return;
    case 'webrtc:ice': {
      if (!mine || !d.candidate) return;
      const c: RTCIceCandidateInit = {
        candidate: String(d.candidate),
        sdpMid: typeof d.sdp_mid === 'string' ? d.sdp_mid : null,
        sdpMLineIndex: typeof d.sdp_mline_index === 'number' ? d.sdp_mline_index : null,
      };
      if (pc?.remoteDescription) await pc.addIceCandidate(c).catch(() => undefined);
      else remoteQueue.push(c);
      return;
    }
    case 'call:resume':
      if (mine) await restartIce();
      return;
    case 'call:reject':
      if (!mine) return;
      return finish(
        state.role === 'caller' ? `${name()} declined the call.` : 'Declined on another device.',
      );
    case 'call:cancel':
      if (mine) finish(`You missed a call from ${name()}.`);
      return;
    case 'call:timeout':
      if (!mine) return;
      return finish(
        state.role === 'caller' ? `${name()} did not answer.` : `You missed a call from ${name()}.`,
      );
    case 'call:busy':
      if (!mine) return;
      return finish(
        d.reason === 'caller_busy'
          ? 'You are already in a call on another device.'
          : `${name()} is in another call. Try again later.`,
      );
    case 'call:answered_elsewhere':
      if (mine) finish('You answered on another device.');
      return;
    case 'call:end':
      if (!mine) return;
      return finish(
        d.reason === 'connection_lost'
          ? 'The connection was lost.'
          : d.reason === 'hangup'
            ? `${name()} hung up.`
            : 'The call ended.',
      );
  }
}

/** A socket (re)opened: ring for a call that rings, take ours back. */
async function afterHello(): Promise<void> {
  try {
    const ack = await socket.request<{ calls: Record<string, unknown>[] }>(
      'call:active',
      {},
    );
    const state = get();
    for (const c of ack.calls ?? []) {
      const id = String(c.call_id);
      if (id === state.callId && c.status === 'accepted' && inCall(state.phase)) {
        await socket.request('call:resume', { call_id: id }).catch(() => undefined);
      } else if (
        !inCall(state.phase) &&
        c.status === 'ringing' &&
        c.direction === 'incoming' &&
        c.from
      ) {
        await onEvent({
          type: 'call:invite',
          data: { call_id: id, from: c.from, media: c.media },
        });
      }
    }
  } catch {
    // next hello asks again
  }
}

export function wireCalls(): () => void {
  const off = socket.on((ev) => {
    onEvent(ev).catch((e: unknown) => console.warn('call event failed', ev.type, e));
  });
  const unsub = useCall.subscribe((s) => onChange?.(s));
  return () => {
    off();
    unsub();
  };
}
