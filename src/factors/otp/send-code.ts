/**
 * What the email and SMS factors share: take a send slot and a code from the OtpStore, deliver it, and
 * turn every outcome into a typed result the sign-in pages can show. Delivery failures are results too
 * (logged without the message), and the undelivered code is withdrawn.
 */
import type { Logger } from '../../logger.js';
import type { PolicySource } from '../../policy/policy-store.js';
import { marketOf } from '../subject.js';
import type { FactorSubject } from '../types.js';
import type { OtpBinding, OtpSettings, OtpStore } from './otp-store.js';

export type OtpChallengeResult =
  /** Sent. `destination` is masked; the next resend is possible in `retryAfterSeconds`. */
  | { ok: true; destination: string; expiresAt: Date; retryAfterSeconds: number }
  /** Not sent: too soon after the last code, or the hourly cap is reached. */
  | { ok: false; reason: 'cooldown' | 'hourly_cap'; retryAfterSeconds: number }
  /** Not sent: the mail server or SMS gateway failed (logged). */
  | { ok: false; reason: 'delivery_failed'; retryAfterSeconds: number }
  /** The account has no address (email) or no verified phone (SMS) to send to. */
  | { ok: false; reason: 'not_enrolled' };

export function otpSettingsFor(policies: PolicySource, subject: FactorSubject): OtpSettings {
  return policies.policyFor(marketOf(subject)).otp;
}

export async function sendCode(
  store: OtpStore,
  binding: OtpBinding & { destination: string },
  settings: OtpSettings,
  masked: string,
  deliver: (code: string, minutes: number) => Promise<void>,
  log: Logger,
): Promise<OtpChallengeResult> {
  const issued = await store.issue(binding, settings);
  if (!issued.ok) return issued;
  try {
    await deliver(issued.code, Math.max(1, Math.floor(settings.ttlSeconds / 60)));
  } catch (err) {
    log.error({ accountId: binding.accountId, channel: binding.channel, purpose: binding.purpose, reason: (err as Error).message }, 'one-time code could not be delivered');
    await store.cancel(binding);
    return { ok: false, reason: 'delivery_failed', retryAfterSeconds: issued.retryAfterSeconds };
  }
  log.info({ accountId: binding.accountId, channel: binding.channel, purpose: binding.purpose }, 'one-time code sent');
  return { ok: true, destination: masked, expiresAt: issued.expiresAt, retryAfterSeconds: issued.retryAfterSeconds };
}
