/**
 * The password factor: argon2id hashing at configurable (OWASP-recommended by default) parameters,
 * the policy for new passwords (length, a blocklist of the most common ones, personal details,
 * optional composition rules), and verification that costs the same whether or not the
 * account exists (a dummy hash is verified for unknown users, so timing does not reveal them).
 */
import argon2 from 'argon2';
import { COMMON_PASSWORD_COUNT, isCommonPassword } from './common-passwords.js';

export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/** Character-class rules; all off by default (length and the blocklist are the modern guidance). */
export interface CompositionRules {
  /** How many of the four classes (lower-case, upper-case, digit, symbol) must appear; 0 turns it off. */
  minCharacterClasses: number;
  requireLowercase: boolean;
  requireUppercase: boolean;
  requireDigit: boolean;
  requireSymbol: boolean;
}

export const NO_COMPOSITION_RULES: CompositionRules = {
  minCharacterClasses: 0,
  requireLowercase: false,
  requireUppercase: false,
  requireDigit: false,
  requireSymbol: false,
};

export interface PasswordRules {
  /** Counted in characters (Unicode code points), so "é" or an emoji counts once. */
  minLength: number;
  /** Counted in UTF-16 units, like the cap in PasswordHasher.verify: a bound on hashing cost. */
  maxLength: number;
  /** Absent means no composition rules. */
  composition?: CompositionRules;
}

/** What the password must not contain: the account's User ID and the name part of its email. */
export interface PersonalDetails {
  userId?: string | null | undefined;
  email?: string | null | undefined;
}

export class WeakPasswordError extends Error {
  /** Every problem found, one sentence each; the message joins them. */
  readonly problems: string[];

  constructor(problems: string | string[]) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(list.join(' '));
    this.name = 'WeakPasswordError';
    this.problems = list;
  }
}

/** Personal details shorter than this are not checked: they would refuse too many passwords. */
const MIN_PERSONAL_LENGTH = 3;

// Letters without case (Chinese, Arabic, …) count as lower-case, so a password in such a script is not
// refused for "no lower-case letter"; a symbol is anything that is neither a letter nor a digit.
const CLASSES = [
  { name: 'lower-case letters', test: /[\p{Ll}\p{Lo}]/u, rule: 'requireLowercase', missing: 'Include a lower-case letter.' },
  { name: 'upper-case letters', test: /\p{Lu}/u, rule: 'requireUppercase', missing: 'Include an upper-case letter.' },
  { name: 'digits', test: /\p{Nd}/u, rule: 'requireDigit', missing: 'Include a digit (0-9).' },
  { name: 'symbols', test: /[^\p{L}\p{Nd}]/u, rule: 'requireSymbol', missing: 'Include a symbol: a character that is neither a letter nor a digit, such as a space or "-".' },
] as const;

function personalProblems(lower: string, personal: PersonalDetails | readonly string[]): string[] {
  const problems: string[] = [];
  const contains = (item: string | null | undefined): boolean =>
    !!item && item.length >= MIN_PERSONAL_LENGTH && lower.includes(item.toLowerCase());
  if (Array.isArray(personal)) {
    // The older form: a list of User ID, email name and the like.
    if ((personal as readonly string[]).some(contains)) problems.push('The password must not contain your User ID or email address.');
    return problems;
  }
  const details = personal as PersonalDetails;
  if (contains(details.userId?.trim())) problems.push('The password must not contain your User ID.');
  const emailName = details.email?.trim().split('@')[0];
  if (contains(emailName) && !(details.userId && emailName!.toLowerCase() === details.userId.trim().toLowerCase())) {
    problems.push('The password must not contain the name part of your email address.');
  }
  return problems;
}

/**
 * Everything wrong with a new password, one sentence each a person can act on; empty when it is fine.
 * Checks: length, the blocklist of the most common passwords (any letter case), one repeated
 * character, the User ID and email name, and the composition rules if any are on.
 */
export function passwordProblems(password: string, rules: PasswordRules, personal: PersonalDetails | readonly string[] = {}): string[] {
  if (password.length === 0) return ['The password must not be empty.'];
  const problems: string[] = [];
  const characters = [...password].length;
  if (characters < rules.minLength) problems.push(`Use at least ${rules.minLength} characters (this password has ${characters}).`);
  if (password.length > rules.maxLength) problems.push(`Use at most ${rules.maxLength} characters.`);
  if (/^(.)\1*$/su.test(password)) {
    problems.push('The password must not be one character repeated.');
  } else if (isCommonPassword(password)) {
    problems.push(`This password is too common: it is one of the ${COMMON_PASSWORD_COUNT.toLocaleString('en-US')} most used passwords, and would be among the first guessed. Choose something less predictable, such as a few unrelated words.`);
  }
  const lower = password.toLowerCase();
  problems.push(...personalProblems(lower, personal));

  const composition = rules.composition ?? NO_COMPOSITION_RULES;
  const present = CLASSES.filter((kind) => kind.test.test(password));
  for (const kind of CLASSES) {
    if (composition[kind.rule] && !present.includes(kind)) problems.push(kind.missing);
  }
  if (present.length < composition.minCharacterClasses) {
    problems.push(
      `Use at least ${composition.minCharacterClasses} of these kinds of character: lower-case letters, upper-case letters, digits, symbols (this password has ${present.length}).`,
    );
  }
  return problems;
}

/** Throws WeakPasswordError listing every problem (see passwordProblems) when there is any. */
export function assertPasswordStrength(password: string, rules: PasswordRules, personal: PersonalDetails | readonly string[] = {}): void {
  const problems = passwordProblems(password, rules, personal);
  if (problems.length > 0) throw new WeakPasswordError(problems);
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
