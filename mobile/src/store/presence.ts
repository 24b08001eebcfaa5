// Contacts online now, from `presence` events and sync's first page.
import { create } from 'zustand';

export interface Presence {
  online: boolean;
  last_seen: string | null;
}

export const usePresence = create<{ by: Record<string, Presence> }>(() => ({ by: {} }));

export function setPresence(userId: string, p: Presence): void {
  usePresence.setState((s) => ({ by: { ...s.by, [userId]: p } }));
}
