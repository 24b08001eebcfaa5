// The call: incoming (accept, decline), outgoing (calling, ringing),
// in the call (their video, yours, mute, camera, swap, speaker, end),
// reconnecting, and how it ended in words.
import { useRouter } from 'expo-router';
import { useEffect, useState } from 'react';
import { Pressable, StyleSheet, Text, View } from 'react-native';

import {
  acceptCall,
  dismiss,
  hangUp,
  rejectCall,
  startCall,
  swapCamera,
  toggleCamera,
  toggleMute,
  toggleSpeaker,
} from '@/calls/engine';
import { useCall } from '@/calls/store';
import { Avatar, Button, colors } from '@/components/ui';
import { VideoView } from '@/components/VideoView';
import { useSession } from '@/store/session';

function Control({
  label,
  glyph,
  on,
  onPress,
  danger,
  go,
}: {
  label: string;
  glyph: string;
  on?: boolean;
  onPress: () => void;
  danger?: boolean;
  go?: boolean;
}) {
  return (
    <Pressable
      onPress={onPress}
      accessibilityRole="button"
      accessibilityLabel={label}
      accessibilityState={on === undefined ? undefined : { selected: on }}
      style={({ pressed }) => [
        s.control,
        on && s.controlOn,
        danger && { backgroundColor: colors.danger },
        go && { backgroundColor: colors.ok },
        pressed && { opacity: 0.7 },
      ]}
      testID={`ctl-${label.toLowerCase().replace(/\s+/g, '-')}`}
    >
      <Text style={s.glyph}>{glyph}</Text>
      <Text style={s.controlText} numberOfLines={1}>
        {label}
      </Text>
    </Pressable>
  );
}

function useElapsed(since: number | null): string {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!since) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [since]);
  if (!since) return '';
  const secs = Math.max(0, Math.floor((now - since) / 1000));
  return `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, '0')}`;
}

export default function CallScreen() {
  const router = useRouter();
  const c = useCall();
  const explained = useSession((st) => st.permissionsExplained);
  const [primer, setPrimer] = useState(false);
  const elapsed = useElapsed(c.phase === 'active' ? c.startedAt : null);
  const name = c.peer?.display_name ?? '';

  const close = () => {
    dismiss();
    if (router.canGoBack()) router.back();
    else router.replace('/');
  };

  useEffect(() => {
    if (c.phase === 'idle') close();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [c.phase]);

  const accept = async () => {
    if (!explained) {
      setPrimer(true);
      return;
    }
    await acceptCall();
  };

  if (primer) {
    return (
      <View style={[s.screen, { padding: 24, justifyContent: 'center' }]}>
        <Text style={s.name} accessibilityRole="header">Camera and microphone</Text>
        <Text style={s.status}>
          To answer, famcall needs your camera, so {name} can see you, and your microphone, so they can hear you.
          Your phone asks you to allow them next. They are used only during calls.
        </Text>
        <Button
          title="Continue"
          kind="ok"
          testID="primer-continue"
          onPress={async () => {
            setPrimer(false);
            await useSession.getState().setPermissionsExplained();
            await acceptCall();
          }}
        />
      </View>
    );
  }

  if (c.phase === 'ended' || c.phase === 'idle') {
    return (
      <View style={[s.screen, s.center]}>
        <Avatar name={name || '?'} size={96} />
        <Text style={s.name}>{name}</Text>
        <Text style={s.status} accessibilityRole="alert" testID="call-outcome">
          {c.outcome ?? 'Call ended.'}
        </Text>
        <View style={{ flexDirection: 'row', gap: 12, marginTop: 24 }}>
          {c.peer ? (
            <Button title="Call again" kind="ok" onPress={() => void startCall(c.peer!, c.media)} testID="call-again" />
          ) : null}
          <Button title="Close" kind="plain" onPress={close} testID="call-close" />
        </View>
      </View>
    );
  }

  if (c.phase === 'incoming') {
    return (
      <View style={[s.screen, s.center]}>
        <Avatar name={name} size={112} />
        <Text style={s.name}>{name}</Text>
        <Text style={s.status} accessibilityLiveRegion="assertive" testID="call-status">
          {c.media === 'audio' ? 'Voice call' : 'Video call'}: calling you…
        </Text>
        <View style={s.bar}>
          <Control label="Decline" glyph="✕" danger onPress={() => void rejectCall()} />
          <Control label="Accept" glyph={c.media === 'audio' ? '📞' : '🎥'} go onPress={() => void accept()} />
        </View>
      </View>
    );
  }

  const video = c.media === 'video';
  const status =
    c.phase === 'outgoing'
      ? c.ringing
        ? 'Ringing…'
        : 'Calling…'
      : c.phase === 'connecting'
        ? 'Connecting…'
        : c.phase === 'reconnecting'
          ? 'Reconnecting…'
          : elapsed;

  return (
    <View style={s.screen}>
      {video && c.remoteStream ? (
        <VideoView stream={c.remoteStream} style={StyleSheet.absoluteFill} label={`${name}'s video`} testID="remote-video" />
      ) : null}
      {!video && c.remoteStream ? (
        <VideoView stream={c.remoteStream} style={{ width: 1, height: 1 }} label={`${name}'s sound`} testID="remote-audio" />
      ) : null}
      <View style={[s.center, { flex: 0, paddingTop: 48 }]}>
        {!video || !c.remoteStream ? <Avatar name={name} size={96} /> : null}
        <Text style={s.name}>{name}</Text>
        <Text style={s.status} accessibilityLiveRegion="polite" testID="call-status">
          {status}
        </Text>
      </View>
      {video && c.localStream && !c.cameraOff ? (
        <VideoView stream={c.localStream} muted mirror={c.facing === 'user'} style={s.pip} label="Your video" testID="local-video" />
      ) : null}
      <View style={[s.bar, { position: 'absolute', bottom: 32, left: 0, right: 0 }]}>
        <Control label={c.muted ? 'Unmute' : 'Mute'} glyph={c.muted ? '🔇' : '🎙'} on={c.muted} onPress={toggleMute} />
        {video ? (
          <Control label={c.cameraOff ? 'Camera on' : 'Camera off'} glyph="📷" on={c.cameraOff} onPress={toggleCamera} />
        ) : null}
        {video ? <Control label="Swap camera" glyph="🔄" onPress={() => void swapCamera()} /> : null}
        <Control label={c.speaker ? 'Speaker on' : 'Speaker off'} glyph="🔊" on={c.speaker} onPress={toggleSpeaker} />
        <Control label="End call" glyph="✕" danger onPress={() => void hangUp()} />
      </View>
    </View>
  );
}

const s = StyleSheet.create({
  screen: { flex: 1, backgroundColor: colors.dark },
  center: { flex: 1, alignItems: 'center', justifyContent: 'center', padding: 24 },
  name: {
    color: '#fff',
    fontSize: 28,
    fontWeight: '700',
    marginTop: 16,
    textAlign: 'center',
    textShadowColor: '#000a',
    textShadowRadius: 4,
  },
  status: {
    color: '#e6edf3',
    fontSize: 18,
    marginTop: 8,
    textAlign: 'center',
    textShadowColor: '#000a',
    textShadowRadius: 4,
  },
  bar: { flexDirection: 'row', justifyContent: 'center', flexWrap: 'wrap', gap: 10, marginTop: 40 },
  control: {
    width: 64,
    minHeight: 64,
    borderRadius: 32,
    backgroundColor: '#30363d',
    alignItems: 'center',
    justifyContent: 'center',
    padding: 6,
  },
  controlOn: { backgroundColor: '#6e7681' },
  glyph: { fontSize: 22 },
  controlText: { color: '#fff', fontSize: 10, marginTop: 2 },
  pip: {
    position: 'absolute',
    right: 16,
    top: 48,
    width: 110,
    height: 160,
    borderRadius: 12,
    overflow: 'hidden',
  },
});
