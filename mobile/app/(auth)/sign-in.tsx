// Sign in with a phone number: the first step asks for the number and
// sends a one-time code to it.
import { Link, useRouter } from 'expo-router';
import { useState } from 'react';
import { KeyboardAvoidingView, Platform, ScrollView } from 'react-native';

import { errorWords } from '@/api/errors';
import { auth } from '@/api/endpoints';
import { Body, Button, ErrorText, Field, Screen, Title, styles } from '@/components/ui';
import { normalisePhone } from '@/lib/phone';

export default function SignIn() {
  const router = useRouter();
  const [phone, setPhone] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');

  const submit = async () => {
    const p = normalisePhone(phone);
    if (!p) {
      setError('Enter the number with its country code, like +44 7700 900123.');
      return;
    }
    setBusy(true);
    setError('');
    try {
      await auth.otpRequest(p);
      router.push({ pathname: '/verify', params: { phone: p } });
    } catch (e) {
      setError(errorWords(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <KeyboardAvoidingView style={{ flex: 1 }} behavior={Platform.OS === 'ios' ? 'padding' : undefined}>
      <ScrollView contentContainerStyle={{ flexGrow: 1 }} keyboardShouldPersistTaps="handled">
        <Screen style={{ justifyContent: 'center' }}>
          <Title>famcall</Title>
          <Body muted>Video calls and messages with your family. Sign in with your phone number.</Body>
          <Field
            label="Phone number"
            value={phone}
            onChangeText={setPhone}
            placeholder="+44 7700 900123"
            keyboardType="phone-pad"
            autoComplete="tel"
            textContentType="telephoneNumber"
            onSubmitEditing={submit}
            testID="phone"
          />
          <ErrorText>{error}</ErrorText>
          <Button title="Send me a code" onPress={submit} busy={busy} testID="send-code" />
          <Link href="/email" style={[styles.body, { color: '#1f6feb', textAlign: 'center', marginTop: 16 }]}>
            Use email and password instead
          </Link>
        </Screen>
      </ScrollView>
    </KeyboardAvoidingView>
  );
}
