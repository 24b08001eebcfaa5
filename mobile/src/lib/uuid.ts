// client_id for messages: a v4 UUID (the server's idempotency key).
import * as Crypto from 'expo-crypto';

export function uuid(): string {
  return Crypto.randomUUID();
}
