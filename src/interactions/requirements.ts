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

/**
 * True when the request's `claims` parameter makes multi-factor an essential acr (OIDC Core 5.5.1.1):
 * `{"id_token": {"acr": {"essential": true, "values": ["urn:gatehouse:acr:mfa"]}}}`. A list that also
 * accepts the password level does not demand multi-factor.
 */
export function claimsDemandMfa(claims: unknown): boolean {
  let parsed: unknown = claims;
  if (typeof claims === 'string') {
    try {
      parsed = JSON.parse(claims);
    } catch {
      return false;
    }
  }
  const acr = (parsed as { id_token?: { acr?: unknown } } | null | undefined)?.id_token?.acr as { essential?: unknown; value?: unknown; values?: unknown } | null | undefined;
  if (!acr || acr.essential !== true) return false;
  const values = Array.isArray(acr.values) ? acr.values : acr.value !== undefined ? [acr.value] : [];
  return values.length > 0 && values.every((v) => v === ACR.multiFactor);
}

/** Whether the authorization request (acr_values, the client's default_acr_values, or claims) demands MFA. */
export function demandsMfa(params: Record<string, unknown> | undefined): boolean {
  return requestDemandsMfa(params?.acr_values) || claimsDemandMfa(params?.claims);
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
