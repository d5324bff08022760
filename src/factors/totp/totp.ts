/**
 * TOTP (RFC 6238, authenticator apps) with otplib: 6 digits, 30-second steps, SHA-1 (what the apps
 * support), ±1 step of clock drift. Enrolment stores a new secret as an unconfirmed credential (sealed
 * with the SecretBox, bound to the account) that expires unless one valid code confirms it; confirming
 * retires any earlier authenticator. A code's time step is accepted at most once: each accepted step
 * must be strictly greater than the last (an atomic conditional update), so a code seen over someone's
 * shoulder cannot be replayed within its window. amr "otp" (RFC 8176).
 */
import { randomBytes } from 'node:crypto';
import { generateSecret, generateURI, verify as verifyTotp } from 'otplib';
import type { Connection } from 'mongoose';
import QRCode from 'qrcode';
import type { SecretBox } from '../../crypto/secret-box.js';
import type { Logger } from '../../logger.js';
import { credentialsCollection, type CredentialDocument, type CredentialForVerifying, type CredentialSummary } from '../credentials.js';
import type { Clock, Factor, FactorSubject, VerifyFailure, VerifyOutcome } from '../types.js';

export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;

/**
 * Whether `response` has the shape of a code from the app (6 digits; spaces are ignored, as in `verify`).
 * Anything else can never be right: callers need not count it as a guess.
 */
export function isWellFormedTotpCode(response: string): boolean {
  const token = response.replace(/\s/g, '');
  return token.length === TOTP_DIGITS && /^\d+$/.test(token);
}

export interface TotpCredential extends CredentialDocument {
  type: 'totp';
  /** The base32 secret, sealed (AES-256-GCM, key id inside) with context `totp:<accountId>`. */
  secretSealed: string;
  confirmedAt: Date | null;
  /** The time step of the last accepted code; only a later step is accepted next. */
  lastUsedStep: number | null;
}

export interface TotpEnrolment {
  /** The base32 key for typing into an app by hand. */
  secret: string;
  otpauthUrl: string;
  /** The otpauth URL as a QR code: a data: URL of an SVG image, for an <img src>. */
  qrCodeDataUrl: string;
  /** Confirm before this, or start again. */
  expiresAt: Date;
}

export type TotpConfirmOutcome = { ok: true } | { ok: false; reason: Extract<VerifyFailure, 'invalid' | 'used' | 'no_challenge'> };

export interface TotpDeps {
  connection: Connection;
  secretBox: SecretBox;
  clock: Clock;
  log: Logger;
  /** Shown in the authenticator app next to the User ID. */
  issuer?: string;
  enrolmentTtlSeconds?: number;
}

export class TotpFactor implements Factor<void, TotpEnrolment, void> {
  readonly name = 'totp' as const;
  private readonly credentials;
  private readonly issuer: string;
  private readonly enrolmentTtlMs: number;

  constructor(private readonly deps: TotpDeps) {
    this.credentials = credentialsCollection<TotpCredential>(deps.connection);
    this.issuer = deps.issuer ?? 'Gatehouse';
    this.enrolmentTtlMs = (deps.enrolmentTtlSeconds ?? 1800) * 1000;
  }

  async isEnrolled(subject: FactorSubject): Promise<boolean> {
    return (await this.active(subject.accountId)) !== null;
  }

  /** isEnrolled over credentials already read (credentialSummaries): a confirmed authenticator of this account. */
  enrolledIn(subject: FactorSubject, credentials: readonly CredentialSummary[]): boolean {
    return credentials.some((c) => c.accountId === subject.accountId && c.type === 'totp' && c.confirmedAt != null);
  }

  /** Starts (or restarts) enrolment: a new unconfirmed secret. The current authenticator keeps working until confirmation. */
  async enrol(subject: FactorSubject): Promise<TotpEnrolment> {
    const now = this.deps.clock.now();
    const secret = generateSecret(); // 20 random bytes, base32
    const expiresAt = new Date(now.getTime() + this.enrolmentTtlMs);
    await this.credentials.deleteMany({ accountId: subject.accountId, type: 'totp', confirmedAt: null });
    await this.credentials.insertOne({
      _id: `totp:${subject.accountId}:${randomBytes(9).toString('base64url')}`,
      accountId: subject.accountId,
      type: 'totp',
      secretSealed: this.deps.secretBox.seal(secret, sealContext(subject.accountId)),
      confirmedAt: null,
      lastUsedStep: null,
      createdAt: now,
      updatedAt: now,
      expiresAt,
    });
    return this.present(subject, secret, expiresAt);
  }

  /** The enrolment waiting for its confirming code (to show the same key again after a typo), if any. */
  async pendingEnrolment(subject: FactorSubject): Promise<TotpEnrolment | null> {
    const [pending] = await this.credentials
      .find({ accountId: subject.accountId, type: 'totp', confirmedAt: null, expiresAt: { $gt: this.deps.clock.now() } })
      .sort({ createdAt: -1 })
      .limit(1)
      .toArray();
    if (!pending?.expiresAt) return null;
    return this.present(subject, this.deps.secretBox.open(pending.secretSealed, sealContext(subject.accountId)), pending.expiresAt);
  }

  private async present(subject: FactorSubject, secret: string, expiresAt: Date): Promise<TotpEnrolment> {
    const otpauthUrl = generateURI({ issuer: this.issuer, label: subject.userId, secret, digits: TOTP_DIGITS, period: TOTP_PERIOD_SECONDS });
    // SVG rather than PNG: sharp at any size, a few KB, and much cheaper to make.
    const svg = await QRCode.toString(otpauthUrl, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
    const qrCodeDataUrl = `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
    return { secret, otpauthUrl, qrCodeDataUrl, expiresAt };
  }

  /** Finishes enrolment with one valid code from the app; replaces any earlier authenticator. */
  async confirmEnrolment(subject: FactorSubject, response: string): Promise<TotpConfirmOutcome> {
    const now = this.deps.clock.now();
    const [pending] = await this.credentials
      .find({ accountId: subject.accountId, type: 'totp', confirmedAt: null, expiresAt: { $gt: now } })
      .sort({ createdAt: -1 })
      .limit(1)
      .toArray();
    if (!pending) return { ok: false, reason: 'no_challenge' };
    const step = await this.matchingStep(pending, response, now);
    if (step === null) return { ok: false, reason: 'invalid' };

    // The confirming code's step counts as used, so it cannot also sign in.
    const confirmed = await this.credentials.findOneAndUpdate(
      { _id: pending._id, confirmedAt: null },
      { $set: { confirmedAt: now, lastUsedStep: step, updatedAt: now }, $unset: { expiresAt: '' } },
    );
    if (!confirmed) return { ok: false, reason: 'used' };
    await this.credentials.deleteMany({ accountId: subject.accountId, type: 'totp', _id: { $ne: pending._id } });
    this.deps.log.info({ accountId: subject.accountId }, 'authenticator app enrolled');
    return { ok: true };
  }

  /** Removes every authenticator of the account, confirmed or not. */
  async remove(subject: FactorSubject): Promise<void> {
    await this.credentials.deleteMany({ accountId: subject.accountId, type: 'totp' });
  }

  /** Nothing to send: the code is in the user's app. */
  async challenge(): Promise<void> {}

  async verify(subject: FactorSubject, response: string): Promise<VerifyOutcome> {
    return this.check(response, await this.active(subject.accountId));
  }

  /**
   * `verify` over the account's credentials as this request already read them with the TOTP fields
   * (`credentialSummaries(…, { forVerifying: 'totp' })`): the authenticator is taken from them instead of being
   * read again. Replays are still refused by the conditional update in `check`, on that credential's `_id`: a
   * credential removed or replaced since it was read matches nothing there.
   */
  async verifyKnown(subject: FactorSubject, response: string, known: readonly CredentialForVerifying[]): Promise<VerifyOutcome> {
    const credential = this.activeIn(subject.accountId, known);
    return this.check(response, credential === undefined ? await this.active(subject.accountId) : credential);
  }

  private async check(response: string, credential: TotpCredential | null): Promise<VerifyOutcome> {
    if (!credential) return { ok: false, reason: 'not_enrolled' };
    const now = this.deps.clock.now();
    const step = await this.matchingStep(credential, response, now);
    if (step === null) return { ok: false, reason: 'invalid' };
    if (credential.lastUsedStep !== null && step <= credential.lastUsedStep) return { ok: false, reason: 'used' };
    // Strictly greater than the stored step, checked in the update itself: parallel replays cannot both pass.
    const accepted = await this.credentials.findOneAndUpdate(
      { _id: credential._id, $or: [{ lastUsedStep: null }, { lastUsedStep: { $lt: step } }] },
      { $set: { lastUsedStep: step, updatedAt: now } },
    );
    return accepted ? { ok: true, amr: ['otp'] } : { ok: false, reason: 'used' };
  }

  /**
   * `active` over credentials already read: the newest confirmed authenticator, or null when there is none.
   * `undefined` when they were read without the TOTP fields (then `active` must read).
   */
  private activeIn(accountId: string, known: readonly CredentialForVerifying[]): TotpCredential | null | undefined {
    const confirmed = known.filter((c) => c.accountId === accountId && c.type === 'totp' && c.confirmedAt != null);
    if (!confirmed.every((c) => typeof c.secretSealed === 'string' && c.lastUsedStep !== undefined)) return undefined;
    const newest = confirmed.reduce<CredentialForVerifying | null>((a, c) => (a && a.confirmedAt!.getTime() >= c.confirmedAt!.getTime() ? a : c), null);
    return newest as TotpCredential | null;
  }

  private async active(accountId: string): Promise<TotpCredential | null> {
    const [credential] = await this.credentials
      .find({ accountId, type: 'totp', confirmedAt: { $ne: null } })
      .sort({ confirmedAt: -1 })
      .limit(1)
      .toArray();
    return credential ?? null;
  }

  /** The time step (within ±1 of now) whose code matches, or null. otplib compares in constant time. */
  private async matchingStep(credential: TotpCredential, response: string, now: Date): Promise<number | null> {
    if (!isWellFormedTotpCode(response)) return null; // otplib throws on malformed tokens; a typo is just "invalid"
    const token = response.replace(/\s/g, '');
    const secret = this.deps.secretBox.open(credential.secretSealed, sealContext(credential.accountId));
    const result = await verifyTotp({
      secret,
      token,
      digits: TOTP_DIGITS,
      period: TOTP_PERIOD_SECONDS,
      epoch: Math.floor(now.getTime() / 1000),
      epochTolerance: TOTP_PERIOD_SECONDS, // one step either side
    });
    // otplib types the result for TOTP and HOTP alike; a TOTP match carries its time step.
    return result.valid && 'timeStep' in result ? result.timeStep : null;
  }
}

function sealContext(accountId: string): string {
  return `totp:${accountId}`;
}
