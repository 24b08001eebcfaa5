// A video stream in the browser: a <video> element fed the MediaStream.
import { useEffect, useRef } from 'react';
import { StyleSheet, type ViewStyle } from 'react-native';

export function VideoView({
  stream,
  style,
  mirror,
  muted,
  label,
  testID,
}: {
  stream: MediaStream | null;
  style?: ViewStyle;
  mirror?: boolean;
  muted?: boolean;
  label: string;
  testID?: string;
}) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const v = ref.current;
    if (!v) return;
    if (v.srcObject !== stream) v.srcObject = stream;
    if (stream) v.play().catch(() => undefined);
  }, [stream]);
  if (!stream) return null;
  const flat = StyleSheet.flatten(style) ?? {};
  return (
    <video
      ref={ref}
      autoPlay
      playsInline
      muted={muted}
      aria-label={label}
      data-testid={testID}
      style={{
        width: '100%',
        height: '100%',
        ...(flat as object),
        objectFit: 'cover',
        transform: mirror ? 'scaleX(-1)' : undefined,
        backgroundColor: '#000',
      }}
    />
  );
}
