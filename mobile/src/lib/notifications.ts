// Push: the device's Expo push token registered with the server
// (POST /v1/devices) once signed in, and a tap on a notification opens
// what it is about: the chat of a message, the call screen for a call.
import * as Device from 'expo-device';
import * as Notifications from 'expo-notifications';
import type { useRouter } from 'expo-router';

import { Platform } from 'react-native';

import { devices } from '../api/endpoints';
import * as secure from './secureStorage';

type Router = ReturnType<typeof useRouter>;

const DEVICE_KEY = 'famcall.device';

Notifications.setNotificationHandler({
  handleNotification: async () => ({
    shouldShowBanner: true,
    shouldShowList: true,
    shouldPlaySound: true,
    shouldSetBadge: false,
  }),
});

/** Where a notification's data leads; null when it leads nowhere known. */
export function routeFor(data: Record<string, unknown> | undefined): string | null {
  if (!data) return null;
  if (typeof data.url === 'string') {
    const m = /^famcall:\/\/(.+)$/.exec(data.url);
    if (m) return `/${m[1]}`;
  }
  if (typeof data.conversation_id === 'string') return `/chat/${data.conversation_id}`;
  if (typeof data.call_id === 'string') return '/call';
  return null;
}

export async function registerForPush(): Promise<string | null> {
  if (!Device.isDevice) return null;
  const current = await Notifications.getPermissionsAsync();
  let granted = current.granted;
  if (!granted && current.canAskAgain) granted = (await Notifications.requestPermissionsAsync()).granted;
  if (!granted) return null;
  if (Platform.OS === 'android') {
    await Notifications.setNotificationChannelAsync('calls', {
      name: 'Calls',
      importance: Notifications.AndroidImportance.MAX,
    });
    await Notifications.setNotificationChannelAsync('messages', {
      name: 'Messages',
      importance: Notifications.AndroidImportance.HIGH,
    });
  }
  const token = (await Notifications.getExpoPushTokenAsync()).data;
  const d = await devices.register({
    platform: Platform.OS === 'ios' ? 'ios' : 'android',
    provider: 'expo',
    push_token: token,
  });
  await secure.setItem(DEVICE_KEY, d.id);
  return d.id;
}

/** Before logout: this device gets no more pushes for the account. */
export async function unregisterPush(): Promise<void> {
  const id = await secure.getItem(DEVICE_KEY);
  if (!id) return;
  await devices.remove(id).catch(() => undefined);
  await secure.removeItem(DEVICE_KEY);
}

export function wireNotifications(router: Router): () => void {
  const open = (r: Notifications.NotificationResponse | null) => {
    const to = routeFor(r?.notification.request.content.data as Record<string, unknown>);
    if (to) router.push(to as never);
  };
  const sub = Notifications.addNotificationResponseReceivedListener(open);
  void Notifications.getLastNotificationResponseAsync().then(open).catch(() => undefined);
  registerForPush().catch(() => undefined);
  return () => sub.remove();
}
