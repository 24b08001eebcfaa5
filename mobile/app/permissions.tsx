// Why famcall asks for the camera and microphone, before the system asks.
import { useLocalSearchParams, useRouter } from 'expo-router';
import { ScrollView } from 'react-native';

import { startCall } from '@/calls/engine';
import { Body, Button, Screen, Title } from '@/components/ui';
import { useSession } from '@/store/session';

export default function Permissions() {
  const router = useRouter();
  const p = useLocalSearchParams<{ id?: string; name?: string; username?: string; media?: string }>();

  const go = async () => {
    await useSession.getState().setPermissionsExplained();
    if (p.id) {
      const media = p.media === 'audio' ? 'audio' : 'video';
      void startCall(
        { id: p.id, display_name: p.name ?? '', username: p.username || null, avatar_url: null },
        media,
      );
      router.replace('/call');
    } else {
      router.back();
    }
  };

  return (
    <ScrollView contentContainerStyle={{ flexGrow: 1 }}>
      <Screen>
        <Title>Camera and microphone</Title>
        <Body>
          To call your family, famcall needs your camera, so they can see you, and your microphone,
          so they can hear you.
        </Body>
        <Body muted>
          Your phone will ask you to allow them next. famcall only uses them during a call you place
          or answer. Sound and video go straight to the person you call and are not recorded.
        </Body>
        <Body muted>
          famcall also asks to send notifications, so you know when someone calls or writes while
          the app is closed. You can change any of these later in your phone’s settings.
        </Body>
        <Button title="Continue" onPress={go} testID="permissions-continue" />
        <Button title="Not now" kind="plain" onPress={() => router.back()} />
      </Screen>
    </ScrollView>
  );
}
