/**
 * What a sign-in must still achieve after the password, and what the result says about it. Pure
 * functions: the rules in one place, testable without a browser.
 */
import { ACR } from '../oidc/scopes.js';

export type MfaMode = 'required' | 'optional' | 'off';

export type Requirement =
  | { kind: 'none' } // the password alone finishes the sign-in
  | { kind: 'second-factor' } // enrolled: challenge a second factor
  | { kind: 'enrol'; deferrable: boolean }; // not enrolled yet: the one-time 2FA enrolment

export interface RequirementInput {
  /** The account's primary market's policy. */
  mfa: MfaMode;
  allowDeferral: boolean;
  /** The account finished 2FA enrolment. */
  enrolled: boolean;
  /** The client or the request demands multi-factor (acr_values / default_acr_values). */
  mfaDemanded: boolean;
}

export function decideRequirement(input: RequirementInput): Requirement {
  // Once enrolled, an account is always challenged, whichever market or client it signs in to.
  if (input.enrolled) return { kind: 'second-factor' };
  // A client that demands MFA cannot be satisfied by deferring: enrol now or no login for it.
  if (input.mfaDemanded) return { kind: 'enrol', deferrable: false };
  if (input.mfa === 'required') return { kind: 'enrol', deferrable: input.allowDeferral };
  return { kind: 'none' };
}

/** True when the authorization request (or the client's default_acr_values) asks for multi-factor. */
export function requestDemandsMfa(acrValues: unknown): boolean {
  return typeof acrValues === 'string' && acrValues.split(' ').includes(ACR.multiFactor);
}

/** RFC 8176 values that prove something the user has (not knows). */
const POSSESSION = new Set(['otp', 'sms', 'hwk', 'swk']);

/** The login result's amr and acr: `mfa` only when a possession factor joined the password. */
export function authenticationResult(earned: string[]): { amr: string[]; acr: string } {
  const amr = [...new Set(earned.filter((v) => v !== 'mfa'))];
  const multi = amr.some((v) => POSSESSION.has(v)) && amr.length >= 2;
  if (multi) amr.push('mfa');
  return { amr, acr: multi ? ACR.multiFactor : ACR.password };
}

export function hasPossessionFactor(earned: string[]): boolean {
  return earned.some((v) => POSSESSION.has(v));
}
