// WebRTC on Android and iOS: react-native-webrtc, seen through the DOM's
// types (its API follows the W3C one) so that the call engine is written
// once for the apps and the web build (webrtc.web.ts).
import { mediaDevices, RTCPeerConnection } from 'react-native-webrtc';

export function peerConnectionClass(): typeof globalThis.RTCPeerConnection {
  return RTCPeerConnection as unknown as typeof globalThis.RTCPeerConnection;
}

export function getUserMedia(c: MediaStreamConstraints): Promise<MediaStream> {
  return mediaDevices.getUserMedia(c as never) as unknown as Promise<MediaStream>;
}

export const isWeb = false;
