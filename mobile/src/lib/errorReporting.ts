// Errors nobody caught go to the server (POST /v1/client-errors), once each.
import { Platform } from 'react-native';

import { reportClientError } from '../api/endpoints';

const seen = new Set<string>();

export function report(err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  const key = `${e.message}\n${e.stack ?? ''}`.slice(0, 500);
  if (seen.has(key) || seen.size > 50) return;
  seen.add(key);
  void reportClientError(e.message, e.stack);
}

let installed = false;

export function installGlobalHandlers(): void {
  if (installed) return;
  installed = true;
  if (Platform.OS === 'web' && typeof window !== 'undefined') {
    window.addEventListener('error', (ev) => report(ev.error ?? ev.message));
    window.addEventListener('unhandledrejection', (ev) => report(ev.reason));
    return;
  }
  const g = globalThis as unknown as {
    ErrorUtils?: {
      getGlobalHandler(): (e: unknown, fatal?: boolean) => void;
      setGlobalHandler(h: (e: unknown, fatal?: boolean) => void): void;
    };
  };
  const eu = g.ErrorUtils;
  if (!eu) return;
  const prev = eu.getGlobalHandler();
  eu.setGlobalHandler((e, fatal) => {
    report(e);
    prev(e, fatal);
  });
}
