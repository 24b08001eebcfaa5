// What a person reads when something goes wrong: words they can act on,
// never an HTTP status or a server's internal text.

export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly field: string | undefined;
  readonly retryAfter: number | undefined;
  readonly attemptsLeft: number | undefined;

  constructor(
    code: string,
    status: number,
    opts: { field?: string; retryAfter?: number; attemptsLeft?: number } = {},
  ) {
    super(code);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
    this.field = opts.field;
    this.retryAfter = opts.retryAfter;
    this.attemptsLeft = opts.attemptsLeft;
  }
}

const WORDS: Record<string, string> = {
  offline: 'You seem to be offline. Check your connection and try again.',
  unavailable: 'famcall is not reachable right now. Try again in a moment.',
  internal: 'Something went wrong on our side. Try again in a moment.',
  unauthorized: 'Your session has ended. Please sign in again.',
  invalid_credentials: 'That email and password do not match.',
  invalid_code: 'That code is not right.',
  code_expired: 'That code has expired. Ask for a new one.',
  too_many_attempts: 'Too many wrong codes. Ask for a new one.',
  email_taken: 'An account with that email already exists.',
  username_taken: 'That username is taken. Try another.',
  not_found: 'We could not find that.',
  blocked: 'You cannot reach this person.',
  not_a_contact: 'You can only message and call your contacts.',
  invalid_refresh_token: 'Your session has ended. Please sign in again.',
  refresh_token_reused: 'Your session has ended. Please sign in again.',
  body_too_large: 'That is too long.',
  wrong_state: 'That is no longer possible.',
  answered_elsewhere: 'The call was answered on another device.',
  too_large: 'That is too large to send.',
};

const FIELD_WORDS: Record<string, string> = {
  phone: 'Enter the number with its country code, like +44 7700 900123.',
  code: 'The code is the 6 digits we sent you.',
  display_name: 'Enter your name (up to 64 characters).',
  username: 'Usernames are 3 to 32 letters, digits, dots or underscores.',
  email: 'Enter a valid email address.',
  password: 'Passwords are 8 to 128 characters.',
  avatar_url: 'The picture address must start with https://.',
  body: 'Messages can be up to 4000 characters.',
  q: 'Type at least 2 letters of a username, or a full number with +.',
};

export function errorWords(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.code === 'rate_limited') {
      const s = err.retryAfter;
      return s && s > 0
        ? `Too many tries. Wait ${waitText(s)} and try again.`
        : 'Too many tries. Wait a little and try again.';
    }
    if (err.code === 'invalid_code' && err.attemptsLeft !== undefined) {
      return `That code is not right. ${err.attemptsLeft} ${
        err.attemptsLeft === 1 ? 'try' : 'tries'
      } left.`;
    }
    if ((err.code === 'invalid_field' || err.code === 'missing_field') && err.field) {
      return FIELD_WORDS[err.field] ?? 'Please check what you entered.';
    }
    return WORDS[err.code] ?? WORDS.internal!;
  }
  return WORDS.internal!;
}

function waitText(s: number): string {
  if (s < 90) return `${Math.ceil(s)} seconds`;
  return `${Math.ceil(s / 60)} minutes`;
}
