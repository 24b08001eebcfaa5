// The root: server state (TanStack Query), the session restored from
// secure storage, the socket and the call engine while signed in, and an
// incoming call brought to the front wherever the person is.
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { Stack, useRouter, type ErrorBoundaryProps } from 'expo-router';
import { StatusBar } from 'expo-status-bar';
import { useEffect, useState } from 'react';
import { AppState, Text, View } from 'react-native';

import { ApiError } from '@/api/errors';
import { wireCalls } from '@/calls/engine';
import { useCall } from '@/calls/store';
import { Button, Loading, styles } from '@/components/ui';
import { installGlobalHandlers, report } from '@/lib/errorReporting';
import { wireNotifications } from '@/lib/notifications';
import { useChat } from '@/store/chat';
import { useSession } from '@/store/session';
import { socket } from '@/ws/socket';
import { wireRealtime } from '@/ws/wire';

function makeClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 10_000,
        retry: (n, e) =>
          n < 2 && !(e instanceof ApiError && e.status >= 400 && e.status < 500),
      },
    },
  });
}

export function ErrorBoundary({ error, retry }: ErrorBoundaryProps) {
  useEffect(() => report(error), [error]);
  return (
    <View style={styles.center}>
      <Text style={[styles.body, styles.centerText]} accessibilityRole="alert">
        Something went wrong. It has been reported.
      </Text>
      <Button title="Try again" onPress={() => void retry()} />
    </View>
  );
}

export default function RootLayout() {
  const [qc] = useState(makeClient);
  const status = useSession((s) => s.status);
  const phase = useCall((s) => s.phase);
  const router = useRouter();

  useEffect(() => {
    installGlobalHandlers();
    void useSession.getState().load();
  }, []);

  useEffect(() => {
    if (status !== 'signedIn') {
      socket.stop();
      useChat.getState().reset();
      qc.clear();
      return;
    }
    const offs = [wireRealtime(qc), wireCalls(), wireNotifications(router)];
    socket.start();
    const sub = AppState.addEventListener('change', (st) => {
      if (st === 'active') socket.kick();
    });
    return () => {
      offs.forEach((off) => off());
      sub.remove();
    };
  }, [status, qc, router]);

  useEffect(() => {
    if (phase === 'incoming') router.push('/call');
  }, [phase, router]);

  if (status === 'loading') return <Loading label="Starting famcall" />;

  return (
    <QueryClientProvider client={qc}>
      <StatusBar style="auto" />
      <Stack screenOptions={{ headerBackTitle: 'Back' }}>
        <Stack.Screen name="(auth)" options={{ headerShown: false }} />
        <Stack.Screen name="(tabs)" options={{ headerShown: false }} />
        <Stack.Screen name="contacts" options={{ title: 'Contacts' }} />
        <Stack.Screen name="chat/[id]" options={{ title: 'Chat' }} />
        <Stack.Screen
          name="call"
          options={{ headerShown: false, presentation: 'fullScreenModal', gestureEnabled: false }}
        />
        <Stack.Screen name="permissions" options={{ title: 'Before you call' }} />
        <Stack.Screen name="settings/profile" options={{ title: 'Profile' }} />
        <Stack.Screen name="settings/blocked" options={{ title: 'Blocked people' }} />
        <Stack.Screen name="settings/account" options={{ title: 'Your data and account' }} />
        <Stack.Screen name="report" options={{ title: 'Report', presentation: 'modal' }} />
      </Stack>
    </QueryClientProvider>
  );
}
