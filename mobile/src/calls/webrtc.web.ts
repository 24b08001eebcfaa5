// WebRTC in the browser: the platform's own. Importing react-native-webrtc
// on the web fails (it needs its native module), so the web build gets
// this file in its place (Metro picks `.web.ts` first).

export function peerConnectionClass(): typeof globalThis.RTCPeerConnection {
  return globalThis.RTCPeerConnection;
}

export function getUserMedia(c: MediaStreamConstraints): Promise<MediaStream> {
  if (typeof navigator === 'undefined' || !navigator.mediaDevices) {
    return Promise.reject(new Error('no media devices'));
  }
  return navigator.mediaDevices.getUserMedia(c);
}

export const isWeb = true;
