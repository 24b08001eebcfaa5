// Where the server is. EXPO_PUBLIC_* values are inlined when the bundle is
// built; left empty, the web build talks to the origin that served it
// (nginx serves the app and the API side by side), and native builds to a
// developer's local `make run`.
import { Platform } from 'react-native';

function webOrigin(): string | null {
  if (Platform.OS !== 'web' || typeof window === 'undefined') return null;
  return window.location.origin;
}

function trimSlash(s: string): string {
  return s.endsWith('/') ? s.slice(0, -1) : s;
}

export function apiUrl(): string {
  const env = process.env.EXPO_PUBLIC_API_URL;
  if (env) return trimSlash(env);
  return webOrigin() ?? 'http://127.0.0.1:8080';
}

export function signalingUrl(): string {
  const env = process.env.EXPO_PUBLIC_SIGNALING_URL;
  if (env) return env;
  return apiUrl().replace(/^http/, 'ws') + '/v1/ws';
}

export const APP_VERSION = '0.1.0';
