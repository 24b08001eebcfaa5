// The alternative: sign in, or create an account, with email and password.
import { useRouter } from 'expo-router';
import { useState } from 'react';
import { ScrollView } from 'react-native';

import { errorWords } from '@/api/errors';
import { auth } from '@/api/endpoints';
import { Button, ErrorText, Field, Screen, Title } from '@/components/ui';
import { useSession } from '@/store/session';

export default function EmailSignIn() {
  const router = useRouter();
  const [creating, setCreating] = useState(false);
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [name, setName] = useState('');
  const [username, setUsername] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');

  const submit = async () => {
    if (password.length < 8) {
      setError('Passwords are 8 to 128 characters.');
      return;
    }
    setBusy(true);
    setError('');
    try {
      const t = creating
        ? await auth.signup({
            email: email.trim(),
            password,
            display_name: name.trim(),
            username: username.trim().toLowerCase(),
          })
        : await auth.login(email.trim(), password);
      await useSession.getState().signIn(t);
      router.replace('/');
    } catch (e) {
      setError(errorWords(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <ScrollView contentContainerStyle={{ flexGrow: 1 }} keyboardShouldPersistTaps="handled">
      <Screen>
        <Title>{creating ? 'Create an account' : 'Sign in with email'}</Title>
        <Field
          label="Email"
          value={email}
          onChangeText={setEmail}
          keyboardType="email-address"
          autoCapitalize="none"
          autoComplete="email"
        />
        <Field
          label="Password"
          value={password}
          onChangeText={setPassword}
          secureTextEntry
          autoComplete={creating ? 'new-password' : 'current-password'}
        />
        {creating ? (
          <>
            <Field label="Your name" value={name} onChangeText={setName} maxLength={64} />
            <Field
              label="Username"
              value={username}
              onChangeText={setUsername}
              autoCapitalize="none"
              maxLength={32}
            />
          </>
        ) : null}
        <ErrorText>{error}</ErrorText>
        <Button title={creating ? 'Create account' : 'Sign in'} onPress={submit} busy={busy} />
        <Button
          title={creating ? 'I already have an account' : 'Create an account instead'}
          kind="plain"
          onPress={() => {
            setCreating(!creating);
            setError('');
          }}
        />
      </Screen>
    </ScrollView>
  );
}
