/**
 * WebAuthn challenges: 32 random bytes, each bound to one ceremony (registration or authentication),
 * one binding (the sign-in interaction, or another key the caller owns, such as a session), and, where
 * known, one account. Single use: consuming is a findOneAndDelete whose filter carries every binding
 * condition, so two parallel submissions cannot both succeed and a challenge presented from the wrong
 * interaction is refused without being burnt for its rightful owner. Expiry is checked against the
 * injected clock on consumption; the TTL index only tidies up.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Connection } from 'mongoose';
import type { Clock } from '../types.js';

export const WEBAUTHN_CHALLENGES_COLLECTION = 'webauthn_challenges';

/** Passwordless sign-in may have two ceremonies open at once (autofill and the button); a few more is plenty. */
const MAX_OPEN_PER_BINDING = 5;

export type CeremonyPurpose = 'registration' | 'authentication';
export type UserVerificationPolicy = 'required' | 'preferred';

/** What a challenge is bound to: exactly one of the interaction or another key the caller owns. */
export interface CeremonyBinding {
  interactionId?: string;
  /** E.g. the account session's id, for adding a passkey outside a sign-in. Stored only as a hash. */
  sessionKey?: string;
  /** The binding's own end (the interaction's expiry): the challenge never outlives it. */
  notAfter?: Date;
}

interface ChallengeDocument {
  /** The challenge itself, base64url: not a secret (the browser sees it), and unique. */
  _id: string;
  purpose: CeremonyPurpose;
  /** SHA-256 of the binding, so session keys never sit in this collection. */
  binding: string;
  /** The account the ceremony is for; null for passwordless sign-in (the account comes from the passkey). */
  accountId: string | null;
  /** Decided when the options were made, so verification enforces what the browser was asked for. */
  userVerification: UserVerificationPolicy;
  createdAt: Date;
  expiresAt: Date;
}

export interface IssuedChallenge {
  challenge: string;
  expiresAt: Date;
}

export interface ConsumedChallenge {
  accountId: string | null;
  userVerification: UserVerificationPolicy;
}

export const CHALLENGE_BYTES = 32;
/** The base64url form of CHALLENGE_BYTES random bytes. */
export const CHALLENGE_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function bindingKey(binding: CeremonyBinding): string {
  const { interactionId, sessionKey } = binding;
  // A programming error, not a user's: every ceremony must be tied to something the caller controls.
  if ((interactionId ? 1 : 0) + (sessionKey ? 1 : 0) !== 1) {
    throw new TypeError('a WebAuthn ceremony needs exactly one of interactionId or sessionKey');
  }
  const key = interactionId ? `interaction:${interactionId}` : `session:${sessionKey!}`;
  return createHash('sha256').update(key).digest('base64url');
}

export class ChallengeStore {
  private readonly collection;

  constructor(
    connection: Connection,
    private readonly clock: Clock,
    private readonly ttlSeconds: number,
  ) {
    this.collection = connection.collection<ChallengeDocument>(WEBAUTHN_CHALLENGES_COLLECTION);
  }

  async ensureIndexes(): Promise<void> {
    await this.collection.createIndexes([
      { key: { binding: 1, purpose: 1, createdAt: -1 }, name: 'binding_purpose_created' },
      { key: { expiresAt: 1 }, name: 'expiresAt_ttl', expireAfterSeconds: 0 },
    ]);
  }

  async issue(
    purpose: CeremonyPurpose,
    binding: CeremonyBinding,
    accountId: string | null,
    userVerification: UserVerificationPolicy,
  ): Promise<IssuedChallenge> {
    const key = bindingKey(binding);
    const now = this.clock.now();
    const ttlEnd = now.getTime() + this.ttlSeconds * 1000;
    const expiresAt = new Date(binding.notAfter ? Math.min(ttlEnd, binding.notAfter.getTime()) : ttlEnd);
    const challenge = randomBytes(CHALLENGE_BYTES).toString('base64url');
    await this.collection.insertOne({ _id: challenge, purpose, binding: key, accountId, userVerification, createdAt: now, expiresAt });
    await this.dropOldest(key, purpose, challenge);
    return { challenge, expiresAt };
  }

  /** Takes the challenge if it is this binding's, for this purpose and account, and still fresh; null otherwise. */
  async consume(challenge: string, purpose: CeremonyPurpose, binding: CeremonyBinding, accountId: string | null): Promise<ConsumedChallenge | null> {
    if (!CHALLENGE_PATTERN.test(challenge)) return null;
    const taken = await this.collection.findOneAndDelete({
      _id: challenge,
      purpose,
      binding: bindingKey(binding),
      accountId,
      expiresAt: { $gt: this.clock.now() },
    });
    return taken ? { accountId: taken.accountId, userVerification: taken.userVerification } : null;
  }

  /** Keeps at most MAX_OPEN_PER_BINDING open challenges per binding and purpose (never the one just issued). */
  private async dropOldest(binding: string, purpose: CeremonyPurpose, keep: string): Promise<void> {
    const surplus = await this.collection
      .find({ binding, purpose, _id: { $ne: keep } }, { projection: { _id: 1 } })
      .sort({ createdAt: -1 })
      .skip(MAX_OPEN_PER_BINDING - 1)
      .toArray();
    if (surplus.length > 0) await this.collection.deleteMany({ _id: { $in: surplus.map((doc) => doc._id) } });
  }
}
