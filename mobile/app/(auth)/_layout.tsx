import { Redirect, Stack } from 'expo-router';

import { useSession } from '@/store/session';

export default function AuthLayout() {
  const status = useSession((s) => s.status);
  if (status === 'signedIn') return <Redirect href="/" />;
  return (
    <Stack screenOptions={{ headerBackTitle: 'Back' }}>
      <Stack.Screen name="sign-in" options={{ title: 'Sign in', headerShown: false }} />
      <Stack.Screen name="verify" options={{ title: 'Enter the code' }} />
      <Stack.Screen name="email" options={{ title: 'Email and password' }} />
    </Stack>
  );
}
