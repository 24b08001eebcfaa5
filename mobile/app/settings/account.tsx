// Your account: a copy of everything famcall keeps about you, the privacy
// policy and terms, and deleting the account (proved with a fresh code
// sent to your phone, or your password).
import { useMutation, useQuery } from '@tanstack/react-query';
import { useRouter } from 'expo-router';
import { useState } from 'react';
import { Linking, Platform, ScrollView, Share, View } from 'react-native';

import { errorWords } from '@/api/errors';
import { auth, legal, me } from '@/api/endpoints';
import { Body, Button, ErrorText, Field, Screen, Title } from '@/components/ui';
import { useSession } from '@/store/session';

/** the export as a file: a download in a browser, the share sheet on a phone */
async function saveExport(doc: Record<string, unknown>): Promise<void> {
  const text = JSON.stringify(doc, null, 2);
  if (Platform.OS === 'web') {
    const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = 'famcall-export.json';
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    return;
  }
  await Share.share({ title: 'famcall export', message: text });
}

function countOf(doc: Record<string, unknown>, key: string): number {
  const v = doc[key];
  return Array.isArray(v) ? v.length : 0;
}

export default function Account() {
  const router = useRouter();
  const user = useSession((s) => s.user);
  const [proof, setProof] = useState('');
  const [codeSent, setCodeSent] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [summary, setSummary] = useState('');
  const byPhone = !!user?.phone;

  const legalQ = useQuery({ queryKey: ['legal'], queryFn: legal.get });

  const exportM = useMutation({
    mutationFn: async () => {
      try {
        await me.askExport();
      } catch (e) {
        // asked already today: the one asked for is still there to fetch
        if (!(e && typeof e === 'object' && 'code' in e && e.code === 'rate_limited')) throw e;
      }
      return me.getExport();
    },
    onSuccess: async (doc) => {
      setSummary(
        `Your data is ready: ${countOf(doc, 'contacts')} contacts, ${countOf(doc, 'conversations')} chats, ${countOf(doc, 'calls')} calls.`,
      );
      await saveExport(doc).catch(() => undefined);
    },
  });

  const sendCode = useMutation({
    mutationFn: () => auth.otpRequest(user!.phone!),
    onSuccess: () => setCodeSent(true),
  });

  const remove = useMutation({
    mutationFn: () => me.remove(byPhone ? { code: proof.trim() } : { password: proof }),
    onSuccess: async () => {
      await useSession.getState().clear();
      router.replace('/sign-in');
    },
  });

  return (
    <ScrollView contentContainerStyle={{ flexGrow: 1 }} keyboardShouldPersistTaps="handled">
      <Screen>
        <Title>Your data</Title>
        <Body muted>A copy of your profile, contacts, chats and calls, as one file.</Body>
        <Button title="Download my data" onPress={() => exportM.mutate()} busy={exportM.isPending} testID="export" />
        {summary ? <Body>{summary}</Body> : null}
        <ErrorText>{exportM.isError ? errorWords(exportM.error) : ''}</ErrorText>

        {legalQ.data?.privacy_url ? (
          <Button title="Privacy policy" kind="plain" onPress={() => void Linking.openURL(legalQ.data.privacy_url!)} />
        ) : null}
        {legalQ.data?.terms_url ? (
          <Button title="Terms of use" kind="plain" onPress={() => void Linking.openURL(legalQ.data.terms_url!)} />
        ) : null}

        <View style={{ height: 24 }} />
        <Title>Delete your account</Title>
        <Body muted>
          Your profile, contacts and sessions are removed at once. Your messages stay with the people you wrote
          to, under “Deleted account”. This cannot be undone.
        </Body>
        {!confirming ? (
          <Button title="Delete my account" kind="danger" onPress={() => setConfirming(true)} testID="delete-start" />
        ) : byPhone && !codeSent ? (
          <>
            <Body>To be sure it is you, we send a code to {user?.phone}.</Body>
            <Button title="Send me a code" onPress={() => sendCode.mutate()} busy={sendCode.isPending} testID="delete-send-code" />
            <ErrorText>{sendCode.isError ? errorWords(sendCode.error) : ''}</ErrorText>
          </>
        ) : (
          <>
            <Field
              label={byPhone ? 'Code' : 'Password'}
              value={proof}
              onChangeText={setProof}
              secureTextEntry={!byPhone}
              keyboardType={byPhone ? 'number-pad' : 'default'}
              maxLength={byPhone ? 6 : 128}
              testID="delete-proof"
            />
            <ErrorText>{remove.isError ? errorWords(remove.error) : ''}</ErrorText>
            <Button
              title="Delete my account for good"
              kind="danger"
              onPress={() => remove.mutate()}
              disabled={!proof}
              busy={remove.isPending}
              testID="delete-confirm"
            />
          </>
        )}
      </Screen>
    </ScrollView>
  );
}
