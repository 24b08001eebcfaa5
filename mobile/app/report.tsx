// Reporting a person, or one of their messages, to the people who run famcall.
import { useMutation } from '@tanstack/react-query';
import { useLocalSearchParams, useRouter } from 'expo-router';
import { useState } from 'react';
import { Pressable, ScrollView, Text } from 'react-native';

import { errorWords } from '@/api/errors';
import { reports } from '@/api/endpoints';
import type { ReportReason } from '@/api/types';
import { Body, Button, ErrorText, Field, Screen, Title, colors, styles } from '@/components/ui';

const REASONS: [ReportReason, string][] = [
  ['spam', 'Spam'],
  ['harassment', 'Harassment or bullying'],
  ['inappropriate', 'Inappropriate content'],
  ['impersonation', 'Pretending to be someone else'],
  ['other', 'Something else'],
];

export default function Report() {
  const router = useRouter();
  const p = useLocalSearchParams<{ user_id: string; name?: string; message_id?: string }>();
  const [reason, setReason] = useState<ReportReason | null>(null);
  const [text, setText] = useState('');
  const [done, setDone] = useState(false);

  const send = useMutation({
    mutationFn: () =>
      reports.send({
        user_id: p.user_id,
        reason: reason!,
        ...(text.trim() ? { text: text.trim() } : {}),
        ...(p.message_id ? { message_id: p.message_id } : {}),
      }),
    onSuccess: () => setDone(true),
  });

  if (done) {
    return (
      <Screen>
        <Title>Thank you</Title>
        <Body>We will look at your report. You can also block {p.name ?? 'them'} from their chat.</Body>
        <Button title="Done" onPress={() => router.back()} />
      </Screen>
    );
  }

  return (
    <ScrollView contentContainerStyle={{ flexGrow: 1 }}>
      <Screen>
        <Title>{p.message_id ? 'Report a message' : `Report ${p.name ?? 'this person'}`}</Title>
        <Body muted>What is wrong?</Body>
        {REASONS.map(([key, label]) => (
          <Pressable
            key={key}
            onPress={() => setReason(key)}
            accessibilityRole="radio"
            accessibilityState={{ checked: reason === key }}
            accessibilityLabel={label}
            style={[styles.row, reason === key && { backgroundColor: '#eef4ff' }]}
          >
            <Text style={[styles.body, { color: reason === key ? colors.primary : colors.text }]}>
              {reason === key ? '◉ ' : '○ '}
              {label}
            </Text>
          </Pressable>
        ))}
        <Field label="Anything to add (optional)" value={text} onChangeText={setText} multiline maxLength={2000} />
        <ErrorText>{send.isError ? errorWords(send.error) : ''}</ErrorText>
        <Button title="Send report" onPress={() => send.mutate()} disabled={!reason} busy={send.isPending} />
      </Screen>
    </ScrollView>
  );
}
