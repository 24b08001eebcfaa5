/** "+44 7700 900123" -> "+447700900123"; null when it cannot be E.164. */
export function normalisePhone(input: string): string | null {
  const digits = input.replace(/[\s().-]/g, '');
  const e164 = digits.startsWith('00') ? `+${digits.slice(2)}` : digits;
  return /^\+[1-9][0-9]{6,14}$/.test(e164) ? e164 : null;
}
