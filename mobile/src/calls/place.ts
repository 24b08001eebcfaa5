// Placing a call from anywhere: the permission explanation first, once.
import type { useRouter } from 'expo-router';


import type { PublicUser } from '../api/types';
import { useSession } from '../store/session';
import { startCall } from './engine';

type Router = ReturnType<typeof useRouter>;

export function placeCall(router: Router, peer: PublicUser, media: 'video' | 'audio'): void {
  if (!useSession.getState().permissionsExplained) {
    router.push({
      pathname: '/permissions',
      params: { id: peer.id, name: peer.display_name, username: peer.username ?? '', media },
    });
    return;
  }
  void startCall(peer, media);
  router.push('/call');
}
