/**
 * Last line of defence for the audit log: whatever a caller passes, a value under a key named like
 * a secret (password, client secret, token, code…) is replaced before it is stored or logged.
 * Callers should not pass such values in the first place; this catches mistakes.
 */
const SECRET_KEYS = new Set(
  [
    'password', 'newpassword', 'passwordhash', 'password_hash',
    'secret', 'client_secret', 'clientsecret', 'secretsealed',
    'token', 'access_token', 'accesstoken', 'refresh_token', 'refreshtoken', 'id_token', 'idtoken',
    'registration_access_token', 'initial_access_token', 'invitation_token', 'invitationtoken',
    'code', 'otp', 'totp', 'authorization', 'cookie', 'private_key', 'privatekey', 'd',
  ].map((k) => k.toLowerCase()),
);

export const REDACTED = '[redacted]';

export function isSecretKey(key: string): boolean {
  return SECRET_KEYS.has(key.toLowerCase());
}

/** A deep copy of `value` with secret-named keys redacted. Depth-limited: audit details are small. */
export function scrubSecrets(value: unknown, depth = 0): unknown {
  if (depth > 8) return REDACTED;
  if (Array.isArray(value)) return value.map((item) => scrubSecrets(item, depth + 1));
  if (value instanceof Date || value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = isSecretKey(key) ? REDACTED : scrubSecrets(inner, depth + 1);
  }
  return out;
}
