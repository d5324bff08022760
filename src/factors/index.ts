/**
 * The second factors, assembled once per process. Wire it into the services:
 *
 *   const policies = PolicyStore.open(policiesFile(), { log });
 *   const sms = createSmsGateway(config.sms, config.env, log);
 *   const relyingParty = resolveRelyingParty(config.webauthn, config.issuer);
 *   const factors = await createFactors({ connection, secretBox, mailer, sms, hasher, policies, relyingParty, log });
 *
 * It loads (or creates) the code MAC key and makes sure the `otp_challenges`, `webauthn_challenges` and
 * `credentials` indexes exist. Build each account's subject with subjectFromAccount(account): its market
 * picks the OTP limits.
 */
import type { Connection } from 'mongoose';
import type { SecretBox } from '../crypto/secret-box.js';
import type { Logger } from '../logger.js';
import type { Mailer } from '../notify/mailer.js';
import type { SmsGateway } from '../notify/sms.js';
import type { PolicySource } from '../policy/policy-store.js';
import { CodeMac } from './code-mac.js';
import { credentialSummaries, ensureCredentialIndexes, type CredentialForVerifying } from './credentials.js';
import { EmailOtpFactor } from './email-otp/email-otp.js';
import { OtpStore } from './otp/otp-store.js';
import type { PasswordHasher } from './password/password.js';
import { RecoveryCodesFactor } from './recovery-codes/recovery-codes.js';
import { SecurityCodeFactor } from './security-code/security-code.js';
import { SmsOtpFactor } from './sms-otp/sms-otp.js';
import { TotpFactor } from './totp/totp.js';
import { TrustedDeviceFactor } from './trusted-device/trusted-device.js';
import { systemClock, type Clock } from './types.js';
import type { RelyingParty } from './webauthn/relying-party.js';
import { WebAuthnFactor } from './webauthn/webauthn.js';

export { subjectFromAccount, marketOf, type AccountSubject } from './subject.js';
export type { OtpChallengeResult } from './otp/send-code.js';
export type { OtpBinding, OtpChannel, OtpPurpose, OtpSettings, IssueResult, OtpVerifyResult, PendingCode } from './otp/otp-store.js';
export type { PhoneEnrolResult, PhoneConfirmResult } from './sms-otp/sms-otp.js';
export type { TotpEnrolment, TotpConfirmOutcome } from './totp/totp.js';
export type { RecoveryCodeSet } from './recovery-codes/recovery-codes.js';
export type { SecurityCodeEnrolResult, SecurityCodeProblem } from './security-code/security-code.js';
export { checkSecurityCode } from './security-code/security-code.js';
export { maskEmail, maskPhone } from './otp/mask.js';
export { normalisePhone } from './sms-otp/sms-otp.js';
export type {
  AuthenticationContext,
  AuthenticationFailure,
  AuthenticationOptionsResult,
  AuthenticationOutcome,
  RegistrationContext,
  RegistrationFailure,
  RegistrationOutcome,
  RenameOutcome,
} from './webauthn/webauthn.js';
export type { CeremonyBinding } from './webauthn/challenges.js';
export type { PasskeySummary } from './webauthn/passkey-record.js';
export { resolveRelyingParty, type RelyingParty, type WebAuthnSettings } from './webauthn/relying-party.js';
export type { TrustedDeviceEnrolment, TrustedDeviceSummary } from './trusted-device/trusted-device.js';
export { EmailOtpFactor, OtpStore, RecoveryCodesFactor, SecurityCodeFactor, SmsOtpFactor, TotpFactor, TrustedDeviceFactor, WebAuthnFactor };

export interface FactorDependencies {
  connection: Connection;
  secretBox: SecretBox;
  mailer: Pick<Mailer, 'send'>;
  sms: SmsGateway;
  hasher: PasswordHasher;
  policies: PolicySource;
  /**
   * WebAuthn's RP ID and origins, from resolveRelyingParty(config.webauthn, issuer) with the issuer
   * actually served. Without it the webauthn factor can list and remove credentials but not run ceremonies.
   */
  relyingParty?: RelyingParty;
  clock?: Clock;
  log: Logger;
  /** See EmailOtpFactor: an entered email code proves the address. */
  onEmailProven?: (accountId: string, email: string) => Promise<void>;
}

export interface Factors {
  /** The shared one-time-code store (email and SMS; also for the later recovery flows). */
  otp: OtpStore;
  emailOtp: EmailOtpFactor;
  smsOtp: SmsOtpFactor;
  totp: TotpFactor;
  recoveryCodes: RecoveryCodesFactor;
  securityCode: SecurityCodeFactor;
  /** Passkeys and security keys: second factor and passwordless sign-in. */
  webauthn: WebAuthnFactor;
  /** "Remember this device": skips the one-time code (never the password) while the trust lasts. */
  trustedDevice: TrustedDeviceFactor;
  /**
   * The account's credentials of these types, summarised in one round trip; each factor's `enrolledIn` judges them.
   * `forVerifying: 'totp'`: with what `totp.verify` needs, to be handed to it (`CredentialForVerifying`).
   */
  credentialSummaries(accountId: string, types: readonly string[], options?: { forVerifying?: string }): Promise<CredentialForVerifying[]>;
}

export async function createFactors(deps: FactorDependencies): Promise<Factors> {
  const clock = deps.clock ?? systemClock;
  const { connection, log } = deps;
  const mac = await CodeMac.load(connection, deps.secretBox);
  const otp = new OtpStore(connection, mac, clock);
  const webauthn = new WebAuthnFactor({ connection, clock, log, relyingParty: deps.relyingParty ?? null });
  const trustedDevice = new TrustedDeviceFactor(connection, clock);
  await Promise.all([otp.ensureIndexes(), ensureCredentialIndexes(connection), webauthn.ensureIndexes(), trustedDevice.ensureIndexes()]);
  return {
    otp,
    emailOtp: new EmailOtpFactor({ store: otp, mailer: deps.mailer, policies: deps.policies, log, ...(deps.onEmailProven ? { onEmailProven: deps.onEmailProven } : {}) }),
    smsOtp: new SmsOtpFactor({ connection, store: otp, sms: deps.sms, policies: deps.policies, log }),
    totp: new TotpFactor({ connection, secretBox: deps.secretBox, clock, log }),
    recoveryCodes: new RecoveryCodesFactor({ connection, mac, clock, log }),
    securityCode: new SecurityCodeFactor({ connection, hasher: deps.hasher, clock, log }),
    webauthn,
    trustedDevice,
    credentialSummaries: (accountId, types, options) => credentialSummaries(connection, accountId, types, options),
  };
}
