/** The rules that decide what a sign-in needs after the password, and what its result says. */
import { authenticationResult, claimsDemandMfa, decideRequirement, demandsMfa, requestDemandsMfa } from '../src/interactions/requirements.js';

describe('decideRequirement', () => {
  const base = { mfa: 'optional' as const, allowDeferral: false, enrolled: false, mfaDemanded: false };

  test('an enrolled account is always challenged, whatever its market says', () => {
    for (const mfa of ['required', 'optional', 'off'] as const) {
      expect(decideRequirement({ ...base, mfa, enrolled: true })).toEqual({ kind: 'second-factor' });
    }
  });

  test('required: enrolment, deferrable only where the policy allows it', () => {
    expect(decideRequirement({ ...base, mfa: 'required' })).toEqual({ kind: 'enrol', deferrable: false });
    expect(decideRequirement({ ...base, mfa: 'required', allowDeferral: true })).toEqual({ kind: 'enrol', deferrable: true });
  });

  test('optional and off: the password is enough, unless the client demands MFA', () => {
    expect(decideRequirement({ ...base, mfa: 'optional' })).toEqual({ kind: 'none' });
    expect(decideRequirement({ ...base, mfa: 'off' })).toEqual({ kind: 'none' });
    expect(decideRequirement({ ...base, mfa: 'optional', mfaDemanded: true })).toEqual({ kind: 'enrol', deferrable: false });
    expect(decideRequirement({ ...base, mfa: 'required', allowDeferral: true, mfaDemanded: true })).toEqual({ kind: 'enrol', deferrable: false });
  });
});

test('requestDemandsMfa reads acr_values', () => {
  expect(requestDemandsMfa('urn:gatehouse:acr:mfa')).toBe(true);
  expect(requestDemandsMfa('urn:gatehouse:acr:pwd urn:gatehouse:acr:mfa')).toBe(true);
  expect(requestDemandsMfa('urn:gatehouse:acr:pwd')).toBe(false);
  expect(requestDemandsMfa(undefined)).toBe(false);
  expect(requestDemandsMfa(['urn:gatehouse:acr:mfa'])).toBe(false);
});

test('claimsDemandMfa: an essential acr that only multi-factor satisfies', () => {
  const mfa = 'urn:gatehouse:acr:mfa';
  expect(claimsDemandMfa(JSON.stringify({ id_token: { acr: { essential: true, values: [mfa] } } }))).toBe(true);
  expect(claimsDemandMfa({ id_token: { acr: { essential: true, value: mfa } } })).toBe(true);
  expect(claimsDemandMfa({ id_token: { acr: { essential: true, values: ['urn:gatehouse:acr:pwd', mfa] } } })).toBe(false);
  expect(claimsDemandMfa({ id_token: { acr: { values: [mfa] } } })).toBe(false); // voluntary
  expect(claimsDemandMfa('{not json')).toBe(false);
  expect(claimsDemandMfa(null)).toBe(false);
  expect(demandsMfa({ claims: { id_token: { acr: { essential: true, value: mfa } } } })).toBe(true);
  expect(demandsMfa({ acr_values: mfa })).toBe(true);
  expect(demandsMfa(undefined)).toBe(false);
});

test('authenticationResult adds mfa only when a possession factor joined the password', () => {
  expect(authenticationResult(['pwd'])).toEqual({ amr: ['pwd'], acr: 'urn:gatehouse:acr:pwd' });
  expect(authenticationResult(['pwd', 'otp'])).toEqual({ amr: ['pwd', 'otp', 'mfa'], acr: 'urn:gatehouse:acr:mfa' });
  expect(authenticationResult(['pwd', 'sms', 'sms'])).toEqual({ amr: ['pwd', 'sms', 'mfa'], acr: 'urn:gatehouse:acr:mfa' });
  expect(authenticationResult(['otp'])).toEqual({ amr: ['otp'], acr: 'urn:gatehouse:acr:pwd' });
  expect(authenticationResult(['pwd', 'kba'])).toEqual({ amr: ['pwd', 'kba'], acr: 'urn:gatehouse:acr:pwd' });
});
