/**
 * WebAuthn: relying-party settings, registration, the second factor and passwordless sign-in, against
 * responses crafted by a software authenticator (webauthn-authenticator.ts) on the real test database.
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import { isoCBOR } from '@simplewebauthn/server/helpers';
import { ConfigError, loadConfig } from '../../src/config.js';
import type { Database } from '../../src/db/connection.js';
import { CREDENTIALS_COLLECTION } from '../../src/factors/credentials.js';
import { createFactors, resolveRelyingParty, WebAuthnFactor, type AuthenticationContext, type WebAuthnSettings } from '../../src/factors/index.js';
import { WEBAUTHN_CHALLENGES_COLLECTION } from '../../src/factors/webauthn/challenges.js';
import type { PasskeyCredential } from '../../src/factors/webauthn/passkey-record.js';
import { resolveRelyingPartySettings } from '../../src/factors/webauthn/relying-party.js';
import { openTestDatabase, testDatabaseUri } from '../support/gatehouse.js';
import { capturingLogger, cheapHasher, rawDump, secretBox, subject, testPolicies, TestClock } from './helpers.js';
import { SoftwareAuthenticator } from './webauthn-authenticator.js';

const ISSUER = 'https://login.example.test';
const ORIGIN = ISSUER;
const DEFAULTS: WebAuthnSettings = { rpId: null, rpName: 'Gatehouse', origins: [], challengeTtlSeconds: 300 };

const clock = new TestClock();
const { log, lines } = capturingLogger();
let database: Database;
let webauthn: WebAuthnFactor;

beforeAll(async () => {
  database = await openTestDatabase(testDatabaseUri('webauthn'));
  const factors = await createFactors({
    connection: database.connection,
    secretBox: secretBox(),
    mailer: { send: () => Promise.reject(new Error('no mail in this test')) },
    sms: { send: () => Promise.reject(new Error('no SMS in this test')) },
    hasher: cheapHasher(),
    policies: testPolicies(),
    relyingParty: resolveRelyingParty(DEFAULTS, ISSUER),
    clock,
    log,
  });
  webauthn = factors.webauthn;
});
afterAll(() => database.close());

const credentials = () => database.connection.collection<PasskeyCredential>(CREDENTIALS_COLLECTION);
const stored = (credentialId: string) => credentials().findOne({ _id: `webauthn:${credentialId}` });

let interactions = 0;
const newInteraction = () => `interaction-${++interactions}`;

/** Registers a new credential of `authenticator` for `who` through the whole ceremony. */
async function registered(authenticator = new SoftwareAuthenticator(), who = subject(), name?: string) {
  const interactionId = newInteraction();
  const options = await webauthn.registrationOptions(who, { interactionId });
  const response = authenticator.create(options, ORIGIN);
  const outcome = await webauthn.verifyRegistration(who, response, { interactionId, ...(name === undefined ? {} : { name }) });
  if (!outcome.ok) throw new Error(`registration failed: ${outcome.reason}`);
  clock.advance(1); // distinct creation times keep list order deterministic
  return { who, authenticator, credentialId: response.id, credential: outcome.credential };
}

/** Sign-in options in a fresh interaction: second factor with an accountId, passwordless without. */
async function signIn(accountId?: string) {
  const context: AuthenticationContext = { interactionId: newInteraction(), ...(accountId ? { accountId } : {}) };
  const result = await webauthn.authenticationOptions(context);
  if (!result.ok) throw new Error(`no options: ${result.reason}`);
  return { context, options: result.options };
}

const verify = (response: AuthenticationResponseJSON, context: AuthenticationContext) => webauthn.verifyAuthentication(response, context);

function configProblems(load: () => unknown): string {
  try {
    load();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.join('\n');
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('relying party settings', () => {
  test('RP ID and origin default to the issuer; explicit ones are normalised', () => {
    expect(resolveRelyingParty(DEFAULTS, 'http://localhost:3000')).toEqual({ id: 'localhost', name: 'Gatehouse', origins: ['http://localhost:3000'], challengeTtlSeconds: 300 });
    expect(resolveRelyingParty(DEFAULTS, ISSUER)).toMatchObject({ id: 'login.example.test', origins: [ISSUER] });
    const explicit = { ...DEFAULTS, rpId: 'Example.test', origins: ['https://login.example.test/', 'https://Accounts.Example.test:8443', 'https://example.test:443'] };
    expect(resolveRelyingParty(explicit, ISSUER)).toMatchObject({
      id: 'example.test',
      origins: ['https://login.example.test', 'https://accounts.example.test:8443', 'https://example.test'],
    });
  });

  test('every origin must be https (or http://localhost) on the RP ID, and the RP ID a domain name', () => {
    const problems = (settings: Partial<WebAuthnSettings>, issuer = ISSUER) => {
      const resolution = resolveRelyingPartySettings({ ...DEFAULTS, ...settings }, issuer);
      return resolution.ok ? [] : resolution.problems;
    };
    expect(problems({ origins: ['http://login.example.test'] })).toEqual([expect.stringMatching(/^webauthn\.origins: "http:\/\/login\.example\.test" must be https/)]);
    expect(problems({ origins: ['https://login.example.test.evil.example'] })).toEqual([expect.stringMatching(/^webauthn\.origins: .* is not on the RP ID "login\.example\.test"/)]);
    expect(problems({ rpId: 'example.test', origins: ['https://notexample.test'] })).toEqual([expect.stringMatching(/not on the RP ID "example\.test"/)]);
    expect(problems({ rpId: 'other.example' })).toEqual([expect.stringMatching(/^webauthn\.origins: "https:\/\/login\.example\.test" \(the issuer's origin; set webauthn\.origins\) is not on the RP ID/)]);
    expect(problems({ origins: ['https://login.example.test/callback'] })).toEqual([expect.stringMatching(/must be an origin only/)]);
    expect(problems({ origins: ['not a url'] })).toEqual([expect.stringMatching(/is not a URL/)]);
    expect(problems({ rpId: 'test' })).toEqual([expect.stringMatching(/^webauthn\.rpId: "test" must be a domain name/)]);
    // An IP address cannot be an RP ID, and plain http is only for localhost.
    expect(problems({}, 'http://127.0.0.1:3000')).toEqual([
      expect.stringMatching(/^webauthn\.rpId: "127\.0\.0\.1" \(the issuer's host; set webauthn\.rpId\)/),
      expect.stringMatching(/^webauthn\.origins: "http:\/\/127\.0\.0\.1:3000" .* must be https/),
    ]);
    expect(() => resolveRelyingParty({ ...DEFAULTS, rpId: 'test' }, ISSUER)).toThrow(/Invalid WebAuthn configuration/);
  });

  test('loadConfig has the defaults, and a bad setting stops start-up naming the field', () => {
    expect(loadConfig({ env: { NODE_ENV: 'test' } }).webauthn).toEqual(DEFAULTS);
    expect(configProblems(() => loadConfig({ env: { NODE_ENV: 'test', ISSUER }, overrides: { webauthn: { origins: ['https://elsewhere.example'] } } }))).toMatch(
      /^webauthn\.origins: "https:\/\/elsewhere\.example" is not on the RP ID "login\.example\.test"/m,
    );
    expect(configProblems(() => loadConfig({ env: { NODE_ENV: 'test' }, overrides: { webauthn: { challengeTtlSeconds: 5 } } }))).toMatch(/^webauthn\.challengeTtlSeconds:/m);
  });
});

describe('registration', () => {
  test('options: a discoverable credential with user verification; user.id is the opaque accountId', async () => {
    const who = subject({ userId: 'jane.doe', email: 'jane@example.com' });
    const interactionId = newInteraction();
    const options = await webauthn.registrationOptions(who, { interactionId });
    expect(options.rp).toEqual({ id: 'login.example.test', name: 'Gatehouse' });
    expect(Buffer.from(options.user.id, 'base64url').toString('utf8')).toBe(who.accountId);
    expect(options.user).toMatchObject({ name: 'jane.doe', displayName: 'Jane Doe' });
    expect(options.authenticatorSelection).toMatchObject({ residentKey: 'required', requireResidentKey: true, userVerification: 'required' });
    expect(options.attestation).toBe('none');
    expect(options.pubKeyCredParams.map((p) => p.alg)).toEqual([-7, -8, -257]);
    expect(options.excludeCredentials).toEqual([]);
    expect(options.timeout).toBe(300_000);
    expect(options.challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const challenge = await database.connection.collection(WEBAUTHN_CHALLENGES_COLLECTION).findOne({ _id: options.challenge as never });
    expect(challenge).toMatchObject({ purpose: 'registration', accountId: who.accountId, userVerification: 'required' });
    expect(challenge!.expiresAt.getTime() - clock.now().getTime()).toBe(300_000);
    expect(challenge!.binding).not.toContain(interactionId); // a hash of it
  });

  test('stores key, counter, transports, AAGUID, device type, backup state, name and times', async () => {
    const who = subject();
    const authenticator = new SoftwareAuthenticator({ aaguid: 'ea9b8d664d011d213ce4b6b48cb575d4', transports: ['internal', 'hybrid', 'carrier-pigeon', 'internal'] });
    const interactionId = newInteraction();
    const options = await webauthn.registrationOptions(who, { interactionId });
    const response = authenticator.create(options, ORIGIN);
    const outcome = await webauthn.verifyRegistration(who, response, { interactionId, name: '  Work\u202E  laptop \n ' });
    expect(outcome).toEqual({
      ok: true,
      credential: {
        credentialId: response.id,
        name: 'Work laptop',
        deviceType: 'singleDevice',
        backedUp: false,
        transports: ['internal', 'hybrid'],
        aaguid: 'ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4',
        createdAt: clock.now(),
        lastUsedAt: null,
      },
    });
    const doc = await stored(response.id);
    expect(doc).toMatchObject({ accountId: who.accountId, type: 'webauthn', credentialId: response.id, counter: 0, rpId: 'login.example.test' });
    // The stored key is the authenticator's public key (COSE EC2, P-256).
    const cose = isoCBOR.decodeFirst<Map<number, unknown>>(Buffer.from(doc!.publicKey, 'base64url'));
    const jwk = createPublicKey(authenticator.keys[0]!.privateKey).export({ format: 'jwk' });
    expect(cose.get(3)).toBe(-7);
    expect(Buffer.from(cose.get(-2) as Uint8Array).toString('base64url')).toBe(jwk.x);
    expect(Buffer.from(cose.get(-3) as Uint8Array).toString('base64url')).toBe(jwk.y);
    expect(await webauthn.isEnrolled(who)).toBe(true);
  });

  test('a synced passkey is multiDevice and backed up; names default by kind; excludeCredentials lists the account\'s own', async () => {
    const first = await registered(new SoftwareAuthenticator({ transports: ['usb'] }));
    const who = first.who;
    expect(first.credential.name).toBe('Security key or device');
    const second = await registered(new SoftwareAuthenticator({ synced: true, transports: ['internal', 'hybrid'] }), who);
    expect(second.credential).toMatchObject({ deviceType: 'multiDevice', backedUp: true, name: 'Synced passkey' });

    const options = await webauthn.registrationOptions(who, { interactionId: newInteraction() });
    expect(options.excludeCredentials).toEqual([
      { id: first.credentialId, type: 'public-key', transports: ['usb'] },
      { id: second.credentialId, type: 'public-key', transports: ['internal', 'hybrid'] },
    ]);
    const list = await webauthn.list(who.accountId);
    expect(list.map((c) => c.credentialId)).toEqual([first.credentialId, second.credentialId]);
    expect(JSON.stringify(list)).not.toContain('publicKey');
    expect((await webauthn.registrationOptions(subject(), { interactionId: newInteraction() })).excludeCredentials).toEqual([]);
  });

  test('the same credential ID cannot be registered again, by the same account or another', async () => {
    const { who, authenticator, credentialId } = await registered();
    for (const account of [who, subject()]) {
      const interactionId = newInteraction();
      const options = await webauthn.registrationOptions(account, { interactionId });
      const again = authenticator.create(options, ORIGIN, { reuse: authenticator.keys[0]! });
      expect(again.id).toBe(credentialId);
      expect(await webauthn.verifyRegistration(account, again, { interactionId })).toEqual({ ok: false, reason: 'duplicate' });
    }
    expect(await credentials().countDocuments({ credentialId })).toBe(1);
    expect((await stored(credentialId))!.accountId).toBe(who.accountId);
  });

  test('refused from another origin, for another RP ID, without user verification, or malformed', async () => {
    const who = subject();
    const attempt = async (origin: string, bend: Parameters<SoftwareAuthenticator['create']>[2] = {}) => {
      const interactionId = newInteraction();
      const options = await webauthn.registrationOptions(who, { interactionId });
      return webauthn.verifyRegistration(who, new SoftwareAuthenticator().create(options, origin, bend), { interactionId });
    };
    const invalid = { ok: false, reason: 'invalid' };
    expect(await attempt('https://login.example.test.evil.example')).toEqual(invalid);
    expect(await attempt('http://login.example.test')).toEqual(invalid);
    expect(await attempt(ORIGIN, { rpId: 'evil.example' })).toEqual(invalid);
    expect(await attempt(ORIGIN, { userVerified: false })).toEqual(invalid);
    expect(await attempt(ORIGIN, { type: 'webauthn.get' })).toEqual(invalid);
    expect(lines.some((line) => line.includes('passkey registration refused') && line.includes('Unexpected registration response origin'))).toBe(true);

    // Malformed input is "invalid" and never becomes a query operator.
    const interactionId = newInteraction();
    const options = await webauthn.registrationOptions(who, { interactionId });
    const genuine = new SoftwareAuthenticator().create(options, ORIGIN);
    const operatorChallenge = Buffer.from(JSON.stringify({ type: 'webauthn.create', challenge: { $ne: null }, origin: ORIGIN })).toString('base64url');
    for (const junk of [
      null,
      'text',
      {},
      { ...genuine, id: { $ne: null } },
      { ...genuine, type: 'password' },
      { ...genuine, response: { ...genuine.response, clientDataJSON: 'not base64url!' } },
      { ...genuine, response: { ...genuine.response, clientDataJSON: operatorChallenge } },
    ]) {
      expect(await webauthn.verifyRegistration(who, junk, { interactionId })).toEqual(invalid);
    }
    expect(await webauthn.isEnrolled(who)).toBe(false);
    // The genuine answer was not affected by the junk.
    expect((await webauthn.verifyRegistration(who, genuine, { interactionId })).ok).toBe(true);
  });

  test('its challenge is bound to interaction and account, single use, and expires', async () => {
    const who = subject();
    const interactionId = newInteraction();
    const options = await webauthn.registrationOptions(who, { interactionId });
    const response = new SoftwareAuthenticator().create(options, ORIGIN);
    const noChallenge = { ok: false, reason: 'no_challenge' };
    expect(await webauthn.verifyRegistration(who, response, { interactionId: newInteraction() })).toEqual(noChallenge);
    expect(await webauthn.verifyRegistration(who, response, { sessionKey: interactionId })).toEqual(noChallenge);
    expect(await webauthn.verifyRegistration(subject(), response, { interactionId })).toEqual(noChallenge);
    // Wrong tries do not burn it for its rightful owner; a replay finds it gone.
    expect((await webauthn.verifyRegistration(who, response, { interactionId })).ok).toBe(true);
    expect(await webauthn.verifyRegistration(who, response, { interactionId })).toEqual(noChallenge);

    const late = newInteraction();
    const lateOptions = await webauthn.registrationOptions(who, { interactionId: late });
    clock.advance(301);
    expect(await webauthn.verifyRegistration(who, new SoftwareAuthenticator().create(lateOptions, ORIGIN), { interactionId: late })).toEqual(noChallenge);

    // Outside a sign-in (the account page), bound to a session key that is stored only as a hash.
    const sessionKey = 'session-key-7f3a9c';
    const sessionOptions = await webauthn.registrationOptions(who, { sessionKey });
    expect(await rawDump(database.connection, WEBAUTHN_CHALLENGES_COLLECTION)).not.toContain(sessionKey);
    expect((await webauthn.verifyRegistration(who, new SoftwareAuthenticator().create(sessionOptions, ORIGIN), { sessionKey })).ok).toBe(true);
  });
});

describe('authentication', () => {
  test('second factor: the account\'s credentials, UV preferred; amr hwk + user; counter and last use recorded', async () => {
    const authenticator = new SoftwareAuthenticator({ countsSignatures: true });
    const { who, credentialId } = await registered(authenticator);
    await registered(new SoftwareAuthenticator()); // another account's: never offered
    const { context, options } = await signIn(who.accountId);
    expect(options.allowCredentials).toEqual([{ id: credentialId, type: 'public-key', transports: ['internal'] }]);
    expect(options).toMatchObject({ rpId: 'login.example.test', userVerification: 'preferred', timeout: 300_000 });

    clock.advance(60);
    const response = authenticator.get(options, ORIGIN);
    expect(await verify(response, context)).toEqual({ ok: true, accountId: who.accountId, credentialId, amr: ['hwk', 'user'], userVerified: true });
    expect(await stored(credentialId)).toMatchObject({ counter: 1, lastUsedAt: clock.now() });
    expect((await webauthn.list(who.accountId))[0]!.lastUsedAt).toEqual(clock.now());

    // Without user verification it is still possession of the key, and says only that.
    const next = await signIn(who.accountId);
    expect(await verify(authenticator.get(next.options, ORIGIN, { userVerified: false }), next.context)).toEqual({
      ok: true,
      accountId: who.accountId,
      credentialId,
      amr: ['hwk'],
      userVerified: false,
    });
    expect(await webauthn.authenticationOptions({ interactionId: newInteraction(), accountId: subject().accountId })).toEqual({ ok: false, reason: 'not_enrolled' });

    const logged = lines.join('\n');
    expect(logged).not.toContain(response.response.signature);
    expect(logged).not.toContain((await stored(credentialId))!.publicKey);
  });

  test('passwordless: empty allow list, UV required; the passkey names the account; amr swk + user', async () => {
    const synced = new SoftwareAuthenticator({ synced: true });
    const { who, credentialId } = await registered(synced);
    const { context, options } = await signIn();
    expect(options.allowCredentials).toEqual([]);
    expect(options.userVerification).toBe('required');
    expect(await verify(synced.get(options, ORIGIN), context)).toEqual({ ok: true, accountId: who.accountId, credentialId, amr: ['swk', 'user'], userVerified: true });

    // Synced passkeys keep no counter: zero after zero is fine.
    const again = await signIn();
    expect(await verify(synced.get(again.options, ORIGIN), again.context)).toMatchObject({ ok: true, accountId: who.accountId });
    expect((await stored(credentialId))!.counter).toBe(0);

    // Refused without user verification, or without the user handle a discoverable credential always sends.
    const noUv = await signIn();
    expect(await verify(synced.get(noUv.options, ORIGIN, { userVerified: false }), noUv.context)).toEqual({ ok: false, reason: 'invalid', credentialId });
    const noHandle = await signIn();
    expect(await verify(synced.get(noHandle.options, ORIGIN, { userHandle: null }), noHandle.context)).toEqual({ ok: false, reason: 'invalid', credentialId });

    // A hardware-bound passkey signs in passwordless as hwk.
    const hardware = await registered(new SoftwareAuthenticator());
    const viaKey = await signIn();
    expect(await verify(hardware.authenticator.get(viaKey.options, ORIGIN), viaKey.context)).toMatchObject({ ok: true, accountId: hardware.who.accountId, amr: ['hwk', 'user'] });
  });

  test('another origin, another RP ID, a bad signature or changed backup eligibility: invalid, and the challenge is spent', async () => {
    const authenticator = new SoftwareAuthenticator();
    const { who, credentialId } = await registered(authenticator);
    const [key] = authenticator.keys;
    const impostorKey = { ...key!, privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey };
    const cases: Array<[origin: string, bend: Parameters<SoftwareAuthenticator['get']>[2]]> = [
      ['https://evil.example', {}],
      ['https://login.example.test:8443', {}],
      [ORIGIN, { rpId: 'evil.example' }],
      [ORIGIN, { rpId: 'example.test' }],
      [ORIGIN, { key: impostorKey }],
      [ORIGIN, { backupEligible: true }],
      [ORIGIN, { type: 'webauthn.create' }],
    ];
    for (const [origin, bend] of cases) {
      const { context, options } = await signIn(who.accountId);
      expect(await verify(authenticator.get(options, origin, bend), context)).toEqual({ ok: false, reason: 'invalid', credentialId });
      expect(await verify(authenticator.get(options, ORIGIN), context)).toEqual({ ok: false, reason: 'no_challenge' });
    }
    expect(lines.some((line) => line.includes('passkey sign-in refused') && line.includes('Unexpected authentication response origin'))).toBe(true);
    expect(await verify({ id: 'x' } as unknown as AuthenticationResponseJSON, { interactionId: newInteraction() })).toEqual({ ok: false, reason: 'invalid' });
  });

  test('replay: an answer counts once; of parallel submissions exactly one succeeds', async () => {
    const authenticator = new SoftwareAuthenticator();
    const { who } = await registered(authenticator);
    const first = await signIn(who.accountId);
    const answer = authenticator.get(first.options, ORIGIN);
    expect(await verify(answer, first.context)).toMatchObject({ ok: true });
    expect(await verify(answer, first.context)).toEqual({ ok: false, reason: 'no_challenge' });

    const parallel = await signIn();
    const once = authenticator.get(parallel.options, ORIGIN);
    const results = await Promise.all(Array.from({ length: 5 }, () => verify(once, parallel.context)));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.reason === 'no_challenge')).toHaveLength(4);
  });

  test('expiry: challengeTtlSeconds, or the interaction\'s end when that is sooner', async () => {
    const authenticator = new SoftwareAuthenticator();
    const { who } = await registered(authenticator);
    const early = await signIn(who.accountId);
    const late = await signIn(who.accountId);
    clock.advance(299);
    expect(await verify(authenticator.get(early.options, ORIGIN), early.context)).toMatchObject({ ok: true });
    clock.advance(2);
    expect(await verify(authenticator.get(late.options, ORIGIN), late.context)).toEqual({ ok: false, reason: 'no_challenge' });

    const context = { interactionId: newInteraction(), accountId: who.accountId, notAfter: new Date(clock.now().getTime() + 60_000) };
    const result = await webauthn.authenticationOptions(context);
    if (!result.ok) throw new Error(result.reason);
    expect(result.options.timeout).toBe(60_000);
    clock.advance(61);
    expect(await verify(authenticator.get(result.options, ORIGIN), context)).toEqual({ ok: false, reason: 'no_challenge' });
  });

  test('a challenge counts only in its interaction and for its kind of sign-in', async () => {
    const authenticator = new SoftwareAuthenticator();
    const { who } = await registered(authenticator);
    const noChallenge = { ok: false, reason: 'no_challenge' };

    const second = await signIn(who.accountId);
    const answer = authenticator.get(second.options, ORIGIN);
    expect(await verify(answer, { ...second.context, interactionId: newInteraction() })).toEqual(noChallenge);
    expect(await verify(answer, { interactionId: second.context.interactionId! })).toEqual(noChallenge); // as passwordless
    expect(await verify(answer, second.context)).toMatchObject({ ok: true }); // still there for the right one

    const passwordless = await signIn();
    expect(await verify(authenticator.get(passwordless.options, ORIGIN), { ...passwordless.context, accountId: who.accountId })).toEqual(noChallenge);

    // A registration challenge cannot be answered with a sign-in.
    const interactionId = newInteraction();
    const creation = await webauthn.registrationOptions(who, { interactionId });
    const borrowed = authenticator.get({ ...second.options, challenge: creation.challenge }, ORIGIN);
    expect(await verify(borrowed, { interactionId, accountId: who.accountId })).toEqual(noChallenge);

    // At most five open challenges per interaction: the oldest gives way.
    const crowded = newInteraction();
    const opened = [];
    for (let i = 0; i < 6; i++) {
      const result = await webauthn.authenticationOptions({ interactionId: crowded });
      if (!result.ok) throw new Error(result.reason);
      opened.push(result.options);
      clock.advance(1);
    }
    expect(await verify(authenticator.get(opened[0]!, ORIGIN), { interactionId: crowded })).toEqual(noChallenge);
    expect(await verify(authenticator.get(opened[5]!, ORIGIN), { interactionId: crowded })).toMatchObject({ ok: true });
  });

  test('counter regression: a counter that does not advance is refused and reported; the stored one stays', async () => {
    const authenticator = new SoftwareAuthenticator({ countsSignatures: true });
    const { who, credentialId } = await registered(authenticator);
    const clone = authenticator.clone();
    for (let i = 0; i < 2; i++) {
      const { context, options } = await signIn(who.accountId);
      expect(await verify(authenticator.get(options, ORIGIN), context)).toMatchObject({ ok: true });
    }
    const regression = { ok: false, reason: 'counter_regression', credentialId, ownerAccountId: who.accountId };
    const cloned = await signIn(who.accountId);
    expect(await verify(clone.get(cloned.options, ORIGIN), cloned.context)).toEqual(regression); // counter 1 after 2
    const same = await signIn();
    expect(await verify(authenticator.get(same.options, ORIGIN, { counter: 2 }), same.context)).toEqual(regression);
    const zero = await signIn();
    expect(await verify(authenticator.get(zero.options, ORIGIN, { counter: 0 }), zero.context)).toEqual(regression);
    expect((await stored(credentialId))!.counter).toBe(2);
    expect(lines.some((line) => line.includes('counter went backwards') && line.includes(credentialId))).toBe(true);

    const genuine = await signIn(who.accountId);
    expect(await verify(authenticator.get(genuine.options, ORIGIN, { counter: 7 }), genuine.context)).toMatchObject({ ok: true });
    expect((await stored(credentialId))!.counter).toBe(7);
  });

  test('unknown credential; a removed credential can no longer sign in', async () => {
    const stranger = new SoftwareAuthenticator();
    stranger.create(await webauthn.registrationOptions(subject(), { interactionId: newInteraction() }), ORIGIN); // never verified
    const unknown = await signIn();
    expect(await verify(stranger.get(unknown.options, ORIGIN), unknown.context)).toEqual({ ok: false, reason: 'unknown_credential', credentialId: stranger.keys[0]!.credentialId });

    const { who, authenticator, credentialId } = await registered();
    expect(await webauthn.remove(subject().accountId, credentialId)).toBe(false); // only the owner's
    const before = await signIn(who.accountId);
    expect(await verify(authenticator.get(before.options, ORIGIN), before.context)).toMatchObject({ ok: true });

    expect(await webauthn.remove(who.accountId, credentialId)).toBe(true);
    expect(await webauthn.isEnrolled(who)).toBe(false);
    const after = await signIn();
    expect(await verify(authenticator.get(after.options, ORIGIN), after.context)).toEqual({ ok: false, reason: 'unknown_credential', credentialId });
    expect(await webauthn.authenticationOptions({ interactionId: newInteraction(), accountId: who.accountId })).toEqual({ ok: false, reason: 'not_enrolled' });
  });

  test('wrong account: A\'s credential in B\'s second factor, or a user handle naming another account', async () => {
    const a = await registered(new SoftwareAuthenticator({ countsSignatures: true }));
    const b = await registered(new SoftwareAuthenticator());
    const wrong = { ok: false, reason: 'wrong_account', credentialId: a.credentialId, ownerAccountId: a.who.accountId };

    const forB = await signIn(b.who.accountId);
    expect(await verify(a.authenticator.get(forB.options, ORIGIN, { key: a.authenticator.keys[0]! }), forB.context)).toEqual(wrong);

    const passwordless = await signIn();
    const claimsB = Buffer.from(b.who.accountId).toString('base64url');
    expect(await verify(a.authenticator.get(passwordless.options, ORIGIN, { userHandle: claimsB }), passwordless.context)).toEqual(wrong);
    expect(await stored(a.credentialId)).toMatchObject({ counter: 0, lastUsedAt: null });
  });
});

describe('management and the shared factor verbs', () => {
  test('rename only one\'s own, tidied and capped; removeAll for administrators', async () => {
    const { who, credentialId } = await registered();
    const second = await registered(new SoftwareAuthenticator(), who);
    expect(await webauthn.rename(who.accountId, credentialId, '  Phone ')).toEqual({ ok: true });
    expect(await webauthn.rename(subject().accountId, credentialId, 'Mine now')).toEqual({ ok: false, reason: 'not_found' });
    expect(await webauthn.rename(who.accountId, 'no-such-credential', 'Spare')).toEqual({ ok: false, reason: 'not_found' });
    expect(await webauthn.rename(who.accountId, credentialId, ' \u0000\t\u202E ')).toEqual({ ok: false, reason: 'invalid_name' });
    expect(await webauthn.rename(who.accountId, credentialId, 42)).toEqual({ ok: false, reason: 'invalid_name' });
    expect(await webauthn.rename(who.accountId, second.credentialId, '🔑'.repeat(100))).toEqual({ ok: true });
    expect((await webauthn.list(who.accountId)).map((c) => c.name)).toEqual(['Phone', '🔑'.repeat(64)]);

    expect(await webauthn.removeAll(who.accountId)).toBe(2);
    expect(await webauthn.list(who.accountId)).toEqual([]);
    expect(await webauthn.isEnrolled(who)).toBe(false);
  });

  test('enrol, challenge and verify (the browser\'s JSON) work as the shared Factor interface', async () => {
    const authenticator = new SoftwareAuthenticator();
    const who = subject();
    const interactionId = newInteraction();
    const creation = await webauthn.enrol(who, { interactionId });
    expect(await webauthn.verifyRegistration(who, authenticator.create(creation, ORIGIN), { interactionId })).toMatchObject({ ok: true });

    const context = { interactionId: newInteraction(), ip: '203.0.113.9' };
    const challenge = await webauthn.challenge(who, context);
    if (!challenge.ok) throw new Error(challenge.reason);
    const answer = JSON.stringify(authenticator.get(challenge.options, ORIGIN));
    expect(await webauthn.verify(who, 'not json', context)).toEqual({ ok: false, reason: 'invalid' });
    expect(await webauthn.verify(who, answer, context)).toEqual({ ok: true, amr: ['hwk', 'user'] });
    expect(await webauthn.verify(who, answer, context)).toEqual({ ok: false, reason: 'no_challenge' });
  });

  test('without a relying party, ceremonies throw but credentials can still be managed; a ceremony needs one binding', async () => {
    const bare = new WebAuthnFactor({ connection: database.connection, clock, log, relyingParty: null });
    await expect(bare.registrationOptions(subject(), { interactionId: newInteraction() })).rejects.toThrow(/no relying party/);
    await expect(bare.authenticationOptions({ interactionId: newInteraction() })).rejects.toThrow(/no relying party/);
    const { who } = await registered();
    expect(await bare.list(who.accountId)).toHaveLength(1);
    expect(await bare.removeAll(who.accountId)).toBe(1);

    await expect(webauthn.authenticationOptions({})).rejects.toThrow(TypeError);
    await expect(webauthn.authenticationOptions({ interactionId: 'a', sessionKey: 'b' })).rejects.toThrow(TypeError);
  });
});
