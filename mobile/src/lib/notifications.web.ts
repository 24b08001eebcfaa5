// The web build has no push (no Expo push token in a browser): nothing to
// register, and nothing to open.
import type { useRouter } from 'expo-router';

type Router = ReturnType<typeof useRouter>;


export function routeFor(): string | null {
  return null;
}

export async function registerForPush(): Promise<string | null> {
  return null;
}

export async function unregisterPush(): Promise<void> {}

export function wireNotifications(_router: Router): () => void {
  return () => undefined;
}
