/** Per-market policy: the shipped file, merging, a message per bad field, and reloading on change. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkMarketAndRoles } from '../../src/accounts/accounts.js';
import { InputError } from '../../src/errors.js';
import { PolicyStore, policiesFile } from '../../src/policy/policy-store.js';
import { parsePolicySet, policyFor, PolicyError } from '../../src/policy/policy.js';
import { capturingLogger, TEST_DEFAULT_POLICY, TestClock } from './helpers.js';

const DEFAULT = TEST_DEFAULT_POLICY;

function problemsOf(raw: unknown): string[] {
  try {
    parsePolicySet(raw, 'policies.json');
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return (err as PolicyError).problems;
  }
  throw new Error('expected a PolicyError');
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-policies-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('the shipped config/policies.json is valid: optional by default, US required, DE required with deferral', () => {
  const { log } = capturingLogger();
  const store = PolicyStore.open(policiesFile({}), { log });
  expect(store.policyFor('default')).toMatchObject({ mfa: 'optional', allowDeferral: true });
  expect(store.policyFor('US')).toMatchObject({ mfa: 'required', allowDeferral: false });
  expect(store.policyFor('DE')).toMatchObject({ mfa: 'required', allowDeferral: true });
  expect(store.policyFor('CH').otp.length).toBe(8);
  expect(policiesFile({ GATEHOUSE_CONFIG_DIR: '/etc/gatehouse' })).toBe('/etc/gatehouse/policies.json');
});

test('a market overrides only what it names; objects merge, arrays replace; unknown markets get the default', () => {
  const set = parsePolicySet(
    {
      default: DEFAULT,
      markets: {
        US: { mfa: 'required', allowDeferral: false },
        CH: { otp: { length: 8 }, factors: ['totp', 'recovery-codes'], lockout: { durationsMinutes: [1] } },
      },
    },
    'policies.json',
  );
  expect(policyFor(set, 'US')).toEqual({ ...DEFAULT, mfa: 'required', allowDeferral: false });
  const ch = policyFor(set, 'ch'); // case does not matter
  expect(ch.otp).toEqual({ ...DEFAULT.otp, length: 8 });
  expect(ch.factors).toEqual(['totp', 'recovery-codes']);
  expect(ch.lockout).toEqual({ threshold: 5, durationsMinutes: [1] });
  expect(policyFor(set, 'FR')).toEqual(DEFAULT);
  expect(policyFor(set, null)).toEqual(DEFAULT);
  expect(parsePolicySet({ default: DEFAULT }, 'x').markets.size).toBe(0); // markets may be left out
});

test('every bad field is reported by its path, in words', () => {
  const problems = problemsOf({
    default: { ...DEFAULT, mfa: 'sometimes', otp: { ...DEFAULT.otp, length: 4 } },
    markets: {
      US: { allowDeferral: 'no', factors: ['totp', 'carrier-pigeon'] },
      DE: { otp: { maxAttempts: 0, extra: 1 }, trustedDevice: { lifetimeDays: 1.5 } },
      FR: { mfa: 'required', factors: ['recovery-codes'] },
      'BAD CODE': {},
    },
  });
  const text = problems.join('\n');
  expect(text).toMatch(/^default\.mfa: must be "required", "optional" or "off"$/m);
  expect(text).toMatch(/^default\.otp\.length: must be at least 6$/m);
  expect(text).toMatch(/^markets\.US\.allowDeferral: must be true or false$/m);
  expect(text).toMatch(/^markets\.US\.factors\.1: must be one of totp, email-otp, sms-otp, recovery-codes$/m);
  expect(text).toMatch(/^markets\.DE\.otp\.maxAttempts: must be at least 1$/m);
  expect(text).toMatch(/^markets\.DE\.otp: .*extra/m);
  expect(text).toMatch(/^markets\.DE\.trustedDevice\.lifetimeDays: must be a whole number$/m);
  expect(text).toMatch(/^markets\.FR\.factors: must allow totp, email-otp or sms-otp when mfa is not "off"$/m);
  expect(text).toMatch(/^markets\.BAD CODE: must be a short market code/m);
  // The default's own faults are not repeated under every market.
  expect(problems.filter((p) => p.includes('otp.length'))).toHaveLength(1);

  expect(problemsOf({ default: DEFAULT, markets: { us: {}, US: {} } }).join('\n')).toMatch(/listed twice/);
  expect(problemsOf({ markets: {} }).join('\n')).toMatch(/^default: must be an object/m);
  expect(problemsOf({ default: { ...DEFAULT, lockout: { threshold: 3, durationsMinutes: [] } } }).join('\n')).toMatch(/^default\.lockout\.durationsMinutes: must list at least one duration$/m);
});

test('a missing or unreadable file stops the start with a clear message', () => {
  const { log } = capturingLogger();
  expect(() => PolicyStore.open(path.join(dir, 'nope.json'), { log })).toThrow(/ENOENT|does not exist/);
  const broken = path.join(dir, 'broken.json');
  writeFileSync(broken, '{ "default": ');
  expect(() => PolicyStore.open(broken, { log })).toThrow(/Invalid policy file .*broken\.json:\n {2}- not readable JSON/);
  const invalid = path.join(dir, 'invalid.json');
  writeFileSync(invalid, JSON.stringify({ default: { ...DEFAULT, mfa: 'maybe' } }));
  expect(() => PolicyStore.open(invalid, { log })).toThrow(/default\.mfa: must be "required", "optional" or "off"/);
});

test('a changed file is picked up (checked at most once a second); an invalid change is logged and the last good one kept', () => {
  const file = path.join(dir, 'live.json');
  writeFileSync(file, JSON.stringify({ default: DEFAULT, markets: { US: { mfa: 'optional' } } }));
  const clock = new TestClock();
  const { log, lines } = capturingLogger();
  const store = PolicyStore.open(file, { log, clock });
  expect(store.policyFor('US').mfa).toBe('optional');

  writeFileSync(file, JSON.stringify({ default: DEFAULT, markets: { US: { mfa: 'required', allowDeferral: false } } }));
  clock.advance(0.5);
  expect(store.policyFor('US').mfa).toBe('optional'); // not checked again yet
  clock.advance(0.5);
  expect(store.policyFor('US')).toMatchObject({ mfa: 'required', allowDeferral: false });
  expect(lines.join('\n')).toContain('policies reloaded');

  writeFileSync(file, JSON.stringify({ default: DEFAULT, markets: { US: { mfa: 'mandatory' } } }));
  clock.advance(1);
  expect(store.policyFor('US').mfa).toBe('required');
  const logged = lines.filter((l) => l.includes('invalid; keeping the last good version'));
  expect(logged).toHaveLength(1);
  expect(logged[0]).toContain('markets.US.mfa: must be');
  clock.advance(1);
  store.policyFor('US');
  expect(lines.filter((l) => l.includes('invalid; keeping the last good version'))).toHaveLength(1); // logged once per bad version

  writeFileSync(file, JSON.stringify({ default: DEFAULT, markets: { US: { mfa: 'off' } } }));
  clock.advance(1);
  expect(store.policyFor('US').mfa).toBe('off');

  rmSync(file);
  clock.advance(1);
  expect(store.policyFor('US').mfa).toBe('off');
  expect(lines.join('\n')).toContain('policies file is gone');
});

test('account input may name only the markets the file names now (any case; "default" always), followed on reload', () => {
  const file = path.join(dir, 'markets.json');
  writeFileSync(file, JSON.stringify({ default: DEFAULT, markets: { us: { mfa: 'optional' } } }));
  const clock = new TestClock();
  const store = PolicyStore.open(file, { log: capturingLogger().log, clock });
  expect(store.marketCodes()).toEqual(['US']);
  expect(checkMarketAndRoles({ market: 'Us' }, store.marketCodes())).toBe('US');
  expect(checkMarketAndRoles({ market: 'DEFAULT' }, store.marketCodes())).toBe('default');
  expect(() => checkMarketAndRoles({ market: 'FR' }, store.marketCodes())).toThrow(new InputError('invalid account: market: "FR" is not a market of the sign-in policy (config/policies.json): use one of US, default'));

  writeFileSync(file, JSON.stringify({ default: DEFAULT, markets: { US: { mfa: 'optional' }, FR: { mfa: 'required' } } }));
  clock.advance(1);
  expect(store.marketCodes()).toEqual(['FR', 'US']);
  expect(checkMarketAndRoles({ market: 'fr' }, store.marketCodes())).toBe('FR');
});
