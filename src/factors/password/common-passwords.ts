/**
 * The blocklist of new passwords: the most common passwords people actually use, from the
 * frequency-ranked password list of @zxcvbn-ts/language-common (MIT). Only the top
 * COMMON_PASSWORD_COUNT entries are kept, lower-cased, so the check ignores letter case.
 *
 * The list is loaded on first use (about 40-50 ms, about 3 MB of heap including the package's own
 * copy of its lists) and kept for the life of the process.
 */
import { createRequire } from 'node:module';

/** How many of the most common passwords are refused. */
export const COMMON_PASSWORD_COUNT = 10_000;

type LanguageCommon = typeof import('@zxcvbn-ts/language-common');

// The package is CommonJS; requiring it (rather than importing it) keeps the load lazy and synchronous.
const require = createRequire(import.meta.url);

let cached: ReadonlySet<string> | undefined;

/** The most common passwords, lower-cased, most common first (the list the package ranks by frequency). */
export function rankedCommonPasswords(): string[] {
  const { dictionary } = require('@zxcvbn-ts/language-common') as LanguageCommon;
  const ranked = dictionary['passwords-common'];
  if (!Array.isArray(ranked) || ranked.length < COMMON_PASSWORD_COUNT) {
    throw new Error(`@zxcvbn-ts/language-common: expected at least ${COMMON_PASSWORD_COUNT} ranked passwords, found ${Array.isArray(ranked) ? ranked.length : 'none'}`);
  }
  return ranked.slice(0, COMMON_PASSWORD_COUNT).map((entry) => entry.toLowerCase());
}

/** The blocklist as a set; built once, on first use. */
export function commonPasswords(): ReadonlySet<string> {
  cached ??= new Set(rankedCommonPasswords());
  return cached;
}

/** True when the password, in any letter case, is one of the COMMON_PASSWORD_COUNT most common. */
export function isCommonPassword(password: string): boolean {
  return commonPasswords().has(password.toLowerCase());
}
