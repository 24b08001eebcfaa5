// The code we sent; on a first sign-in, the person's name too.
import { useLocalSearchParams, useRouter } from 'expo-router';
import { useState } from 'react';
import { ScrollView } from 'react-native';

import { ApiError, errorWords } from '@/api/errors';
import { auth } from '@/api/endpoints';
import { Body, Button, ErrorText, Field, Screen, Title } from '@/components/ui';
import { useSession } from '@/store/session';

export default function Verify() {
  const { phone } = useLocalSearchParams<{ phone: string }>();
  const router = useRouter();
  const [code, setCode] = useState('');
  const [name, setName] = useState('');
  const [needName, setNeedName] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');

  const submit = async () => {
    if (!/^[0-9]{6}$/.test(code.trim())) {
      setError('The code is the 6 digits we sent you.');
      return;
    }
    if (needName && !name.trim()) {
      setError('Enter your name, so your family knows it is you.');
      return;
    }
    setBusy(true);
    setError('');
    try {
      const t = await auth.otpVerify(phone ?? '', code.trim(), needName ? name.trim() : undefined);
      await useSession.getState().signIn(t);
      router.replace('/');
    } catch (e) {
      if (e instanceof ApiError && e.code === 'missing_field' && e.field === 'display_name') {
        setNeedName(true);
      } else {
        setError(errorWords(e));
      }
    } finally {
      setBusy(false);
    }
  };

  const resend = async () => {
    setError('');
    try {
      await auth.otpRequest(phone ?? '');
      setInfo('We sent a new code.');
    } catch (e) {
      setError(errorWords(e));
    }
  };

  return (
    <ScrollView contentContainerStyle={{ flexGrow: 1 }} keyboardShouldPersistTaps="handled">
      <Screen>
        <Title>{needName ? 'Welcome to famcall' : 'Enter the code'}</Title>
        <Body muted>
          {needName
            ? 'This is your first time here. What should your family see as your name?'
            : `We sent a 6-digit code to ${phone ?? 'your phone'}.`}
        </Body>
        <Field
          label="Code"
          value={code}
          onChangeText={setCode}
          keyboardType="number-pad"
          autoComplete="sms-otp"
          textContentType="oneTimeCode"
          maxLength={6}
          testID="code"
          onSubmitEditing={submit}
        />
        {needName ? (
          <Field
            label="Your name"
            value={name}
            onChangeText={setName}
            autoComplete="name"
            textContentType="name"
            maxLength={64}
            testID="display-name"
            onSubmitEditing={submit}
          />
        ) : null}
        <ErrorText>{error}</ErrorText>
        {info ? <Body muted>{info}</Body> : null}
        <Button title={needName ? 'Continue' : 'Sign in'} onPress={submit} busy={busy} testID="verify" />
        <Button title="Send a new code" kind="plain" onPress={resend} />
      </Screen>
    </ScrollView>
  );
}
