// A video stream on Android and iOS: react-native-webrtc's RTCView.
import { RTCView } from 'react-native-webrtc';
import type { ViewStyle } from 'react-native';

export function VideoView({
  stream,
  style,
  mirror,
  label,
}: {
  stream: MediaStream | null;
  style?: ViewStyle;
  mirror?: boolean;
  muted?: boolean;
  label: string;
  testID?: string;
}) {
  if (!stream) return null;
  const url = (stream as unknown as { toURL(): string }).toURL();
  return (
    <RTCView
      streamURL={url}
      style={style}
      objectFit="cover"
      mirror={mirror}
      accessibilityLabel={label}
    />
  );
}
