/**
 * The password factor: argon2id hashing at configurable (OWASP-recommended by default) parameters,
 * a strength check for new passwords, and verification that costs the same whether or not the
 * account exists (a dummy hash is verified for unknown users, so timing does not reveal them).
 */
import argon2 from 'argon2';

export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export interface PasswordRules {
  minLength: number;
  maxLength: number;
}

// A few of the most common passwords; a length rule alone lets these through.
const COMMON = new Set([
  'password', 'password1', 'password12', 'password123', 'password1234', '1234567890', '12345678910',
  'qwertyuiop', 'qwerty1234', 'iloveyou123', 'letmein123', 'welcome123', 'admin12345', 'changeme123',
  'abcdefghij', 'passw0rd123', 'football123', 'baseball123', 'princess123', 'sunshine123',
]);

export class WeakPasswordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WeakPasswordError';
  }
}

/** Throws WeakPasswordError with a message a person can act on. */
export function assertPasswordStrength(password: string, rules: PasswordRules, personal: string[] = []): void {
  if (password.length === 0) throw new WeakPasswordError('password must not be empty');
  if (password.length < rules.minLength) throw new WeakPasswordError(`password must be at least ${rules.minLength} characters`);
  if (password.length > rules.maxLength) throw new WeakPasswordError(`password must be at most ${rules.maxLength} characters`);
  if (/^(.)\1*$/su.test(password)) throw new WeakPasswordError('password must not repeat a single character');
  if (COMMON.has(password.toLowerCase())) throw new WeakPasswordError('password is too common');
  const lower = password.toLowerCase();
  for (const item of personal) {
    if (item && item.length >= 3 && lower.includes(item.toLowerCase())) {
      throw new WeakPasswordError('password must not contain your User ID or email');
    }
  }
}

export class PasswordHasher {
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly params: Argon2Params,
    readonly rules: PasswordRules,
  ) {}

  hash(password: string): Promise<string> {
    return argon2.hash(password, { type: argon2.argon2id, ...this.params });
  }

  /** Verifies against `hash`, or against a dummy hash when there is none, so both take the same time. */
  async verify(hash: string | undefined | null, password: string): Promise<boolean> {
    // Passwords longer than the rule never match, and never cost more than the rule's maximum to reject.
    const candidate = password.slice(0, this.rules.maxLength + 1);
    if (!hash) {
      this.dummyHash ??= this.hash(`dummy-${Math.random()}`);
      await argon2.verify(await this.dummyHash, candidate).catch(() => false);
      return false;
    }
    try {
      const matches = await argon2.verify(hash, candidate);
      return matches && candidate.length <= this.rules.maxLength;
    } catch {
      return false;
    }
  }

  /** True when a stored hash was made with weaker parameters than configured now. */
  needsRehash(hash: string): boolean {
    return argon2.needsRehash(hash, { ...this.params });
  }
}
