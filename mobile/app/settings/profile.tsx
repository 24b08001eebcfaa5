// The profile: the name relatives see, a username to be found by, a picture.
import { useMutation } from '@tanstack/react-query';
import { useRouter } from 'expo-router';
import { useState } from 'react';
import { ScrollView } from 'react-native';

import { errorWords } from '@/api/errors';
import { me } from '@/api/endpoints';
import { Body, Button, ErrorText, Field, Screen } from '@/components/ui';
import { useSession } from '@/store/session';

export default function Profile() {
  const router = useRouter();
  const user = useSession((s) => s.user);
  const [name, setName] = useState(user?.display_name ?? '');
  const [username, setUsername] = useState(user?.username ?? '');
  const [avatar, setAvatar] = useState(user?.avatar_url ?? '');

  const save = useMutation({
    mutationFn: () => {
      const patch: { display_name?: string; username?: string; avatar_url?: string | null } = {};
      if (name.trim() !== user?.display_name) patch.display_name = name.trim();
      if (username.trim() && username.trim().toLowerCase() !== user?.username) {
        patch.username = username.trim().toLowerCase();
      }
      if ((avatar.trim() || null) !== (user?.avatar_url ?? null)) patch.avatar_url = avatar.trim() || null;
      if (Object.keys(patch).length === 0) return Promise.resolve(user!);
      return me.update(patch);
    },
    onSuccess: async (u) => {
      await useSession.getState().setUser(u);
      router.back();
    },
  });

  return (
    <ScrollView contentContainerStyle={{ flexGrow: 1 }} keyboardShouldPersistTaps="handled">
      <Screen>
        <Field label="Name" value={name} onChangeText={setName} maxLength={64} testID="profile-name" />
        <Field
          label="Username"
          value={username}
          onChangeText={setUsername}
          autoCapitalize="none"
          maxLength={32}
          testID="profile-username"
        />
        <Body muted>Relatives can find you by your username or your phone number.</Body>
        <Field
          label="Picture address (https://…)"
          value={avatar}
          onChangeText={setAvatar}
          autoCapitalize="none"
          keyboardType="url"
        />
        <ErrorText>{save.isError ? errorWords(save.error) : ''}</ErrorText>
        <Button title="Save" onPress={() => save.mutate()} busy={save.isPending} testID="profile-save" />
      </Screen>
    </ScrollView>
  );
}
