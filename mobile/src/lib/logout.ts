// Logging out: this device's push registration and session end on the
// server, then everything of the account is forgotten here.
import { auth } from '../api/endpoints';
import { useSession } from '../store/session';
import { unregisterPush } from './notifications';

export async function logOut(): Promise<void> {
  const rt = useSession.getState().refreshToken;
  await unregisterPush().catch(() => undefined);
  if (rt) await auth.logout(rt).catch(() => undefined);
  await useSession.getState().clear();
}
