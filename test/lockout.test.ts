/**
 * Lockout after wrong passwords, end to end through the sign-in pages: the exact threshold under 50
 * parallel wrong passwords, escalating lock periods (moved by a test clock), the locked message and why
 * it cannot tell a locked account from an unknown User ID, the lock mail, admin unlock, and reset on success.
 */
import { cliCall } from '../src/admin/call.js';
import { SIGN_IN_FAILED, SIGN_IN_LOCKED } from '../src/interactions/flow.js';
import type { Page } from './support/browser.js';
import { pageText, withoutPerRequestValues } from './support/pages.js';
import { signInTestbed } from './support/signin-testbed.js';
import { startTestGatehouse } from './support/gatehouse.js';
import { discover, isCallback, RP_REDIRECT, startAuthorization, type AuthorizationAttempt } from './support/rp.js';

const PASSWORD = 'correct horse lockout';
const WRONG = 'not the password at all';

const bed = signInTestbed('lockout');

const createAccount = (userId: string) => bed.gh.services.accounts.create({ userId, email: `${userId}@example.com`, name: `${userId} Example`, password: PASSWORD });
const submitPassword = (attempt: AuthorizationAttempt, page: Page, login: string, password: string) => attempt.browser.submit(page, '/login', { login, password }, isCallback);

async function failures(accountId: string, reason: string): Promise<number> {
  return bed.gh.services.audit.model.countDocuments({ type: 'signin.password', outcome: 'failure', 'actor.id': accountId, 'details.reason': reason });
}

test('50 parallel wrong passwords get exactly the threshold of password checks, then one lock', async () => {
  const account = await createAccount('parallel');
  const attempts = await Promise.all(Array.from({ length: 50 }, () => startAuthorization(bed.rp)));
  const pages = await Promise.all(attempts.map((a) => submitPassword(a, a.page, 'parallel', WRONG)));

  expect(pages.every((p) => p.status === 401)).toBe(true);
  expect(await failures(account.accountId, 'wrong_password')).toBe(5);
  expect(await failures(account.accountId, 'locked')).toBe(45);
  expect(await bed.gh.services.audit.model.countDocuments({ type: 'account.locked', 'target.id': account.accountId })).toBe(1);
  const until = await bed.gh.services.lockout.lockedUntil(account.accountId);
  expect(until?.getTime()).toBe(bed.clock.now().getTime() + 5 * 60_000);

  // The lock mail says what happened and what to do.
  const mail = await bed.smtp.waitFor('parallel@example.com', (m) => m.subject === 'Your account was temporarily locked');
  expect(mail.text).toContain(`${bed.gh.url}/recover`);
});

test('while locked even the right password is refused with the locked message; after the lock it works', async () => {
  const account = await createAccount('patient');
  const attempt = await startAuthorization(bed.rp);
  let page = attempt.page;
  for (let i = 0; i < 4; i++) {
    page = await submitPassword(attempt, page, 'patient', WRONG);
    expect(page.body).toContain(SIGN_IN_FAILED);
  }
  page = await submitPassword(attempt, page, 'patient', WRONG);
  expect(pageText(page.body)).toContain(SIGN_IN_LOCKED);
  page = await submitPassword(attempt, page, 'patient', PASSWORD);
  expect(page.status).toBe(401);
  expect(pageText(page.body)).toContain(SIGN_IN_LOCKED);
  expect(await failures(account.accountId, 'locked')).toBe(1);

  bed.clock.advance(5 * 60 + 1);
  page = await submitPassword(attempt, page, 'patient', PASSWORD);
  expect(isCallback(page.url)).toBe(true);
});

test('repeated locks escalate through the configured periods (5, 15, 60 minutes) and a success starts again', async () => {
  const account = await createAccount('escalate');
  const attempt = await startAuthorization(bed.rp);
  let page = attempt.page;
  const lockAgain = async () => {
    for (let i = 0; i < 5; i++) page = await submitPassword(attempt, page, 'escalate', WRONG);
    return (await bed.gh.services.lockout.lockedUntil(account.accountId))!.getTime() - bed.clock.now().getTime();
  };
  expect(await lockAgain()).toBe(5 * 60_000);
  bed.clock.advance(5 * 60 + 1);
  expect(await lockAgain()).toBe(15 * 60_000);
  bed.clock.advance(15 * 60 + 1);
  expect(await lockAgain()).toBe(60 * 60_000);
  bed.clock.advance(60 * 60 + 1);
  expect(await lockAgain()).toBe(60 * 60_000); // the last period repeats
  bed.clock.advance(60 * 60 + 1);

  // A right password clears the count and the escalation.
  page = await submitPassword(attempt, page, 'escalate', PASSWORD);
  expect(isCallback(page.url)).toBe(true);
  const next = await startAuthorization(bed.rp);
  page = next.page;
  for (let i = 0; i < 4; i++) page = await submitPassword(next, page, 'escalate', WRONG);
  expect(await bed.gh.services.lockout.lockedUntil(account.accountId)).toBeNull();
  page = await submitPassword(next, page, 'escalate', WRONG);
  expect((await bed.gh.services.lockout.lockedUntil(account.accountId))!.getTime() - bed.clock.now().getTime()).toBe(5 * 60_000);
});

test('a locked account and an unknown User ID look the same: same pages after the same number of tries', async () => {
  await createAccount('known-user');
  const run = async (login: string) => {
    const attempt = await startAuthorization(bed.rp);
    let page = attempt.page;
    const seen: Array<{ status: number; body: string }> = [];
    for (let i = 0; i < 7; i++) {
      page = await submitPassword(attempt, page, login, WRONG);
      seen.push({ status: page.status, body: withoutPerRequestValues(page) });
    }
    return seen;
  };
  const known = await run('known-user');
  const unknown = await run('nobody-by-this-name');
  expect(unknown).toEqual(known);
  expect(pageText(known[4]!.body)).toContain(SIGN_IN_LOCKED);
  // Unknown identifiers are stored only as a keyed hash.
  const stored = await bed.gh.services.lockout.model.find({}).lean();
  expect(JSON.stringify(stored)).not.toContain('nobody-by-this-name');
});

test('an administrator unlocks a temporarily locked account, audited', async () => {
  const account = await createAccount('unlock-me');
  const attempt = await startAuthorization(bed.rp);
  let page = attempt.page;
  for (let i = 0; i < 5; i++) page = await submitPassword(attempt, page, 'unlock-me', WRONG);
  const shown = await bed.gh.services.admin.accountAdmin.get(account.accountId);
  expect(shown).toMatchObject({ status: 'locked', lockedUntil: expect.any(String) });

  const result = await bed.gh.services.admin.accountOps.setStatus(account.accountId, 'unlock', cliCall());
  expect(result.account).toMatchObject({ status: 'active', lockedUntil: null });
  const [entry] = await bed.gh.services.audit.model.find({ type: 'admin.account.unlocked', 'target.id': account.accountId }).lean();
  expect(entry).toMatchObject({ changes: { status: { before: 'locked', after: 'active' } } });

  page = await submitPassword(attempt, page, 'unlock-me', PASSWORD);
  expect(isCallback(page.url)).toBe(true);
  // Unlocking an account that is not locked is a conflict, not a silent success.
  await expect(bed.gh.services.admin.accountOps.setStatus(account.accountId, 'unlock', cliCall())).rejects.toThrow(/not locked/);
});

test('an unlock also lifts the sign-in throttle on the account\'s User ID, so its owner can sign in at once', async () => {
  // The tests' configuration raises the throttle out of reach; this Gatehouse has the default's shape, smaller.
  const throttle = { ip: { points: 1000, durationSeconds: 600 }, identifier: { points: 8, durationSeconds: 600 } };
  const gh = await startTestGatehouse('lockout_throttle', { overrides: { rateLimits: { signin: throttle } } });
  try {
    const client = await gh.services.clients.create({ name: 'Throttle RP', redirectUris: [RP_REDIRECT], firstParty: true });
    const rp = await discover(gh.url, client.clientId, client.clientSecret);
    const account = await gh.services.accounts.create({ userId: 'throttled-owner', email: 'throttled-owner@example.com', name: 'Throttled Owner', password: PASSWORD });
    const attempt = await startAuthorization(rp);
    let page = attempt.page;
    // Five wrong passwords lock the account; three more use up the throttle on what was typed.
    for (let i = 0; i < 8; i++) page = await submitPassword(attempt, page, 'throttled-owner', WRONG);
    expect((await submitPassword(attempt, page, 'throttled-owner', PASSWORD)).status).toBe(429);

    const result = await gh.services.admin.accountOps.setStatus(account.accountId, 'unlock', cliCall());
    expect(result.account).toMatchObject({ status: 'active' });
    page = await submitPassword(attempt, page, 'throttled-owner', PASSWORD);
    expect(isCallback(page.url)).toBe(true);

    // Not locked, only throttled: the unlock lifts the throttle alone and says so.
    const other = await gh.services.accounts.create({ userId: 'quiet-owner', email: 'quiet-owner@example.com', name: 'Quiet Owner', password: PASSWORD });
    for (let i = 0; i < 8; i++) await gh.services.rateLimits.consume('signin', { ip: '192.0.2.90', identifier: 'quiet-owner' });
    expect((await gh.services.admin.accountOps.setStatus(other.accountId, 'unlock', cliCall())).cleared).toEqual({ lockout: false, secondFactorPause: false, signInThrottle: true });
    expect((await gh.services.rateLimits.consume('signin', { ip: '192.0.2.90', identifier: 'quiet-owner' })).ok).toBe(true);
    // A refused unlock (nothing in force) changes nothing: the count on what was typed stays.
    const calm = await gh.services.accounts.create({ userId: 'calm-owner', email: 'calm-owner@example.com', name: 'Calm Owner', password: PASSWORD });
    for (let i = 0; i < 7; i++) await gh.services.rateLimits.consume('signin', { ip: '192.0.2.91', identifier: 'calm-owner' });
    await expect(gh.services.admin.accountOps.setStatus(calm.accountId, 'unlock', cliCall())).rejects.toThrow(/not locked/);
    expect((await gh.services.rateLimits.consume('signin', { ip: '192.0.2.91', identifier: 'calm-owner' })).ok).toBe(true);
    expect((await gh.services.rateLimits.consume('signin', { ip: '192.0.2.91', identifier: 'calm-owner' })).ok).toBe(false);
  } finally {
    await gh.close();
  }
});

test('locking an account through its email never shows when its User ID is tried (the two are not linked)', async () => {
  const account = await createAccount('linked');
  const attempt = await startAuthorization(bed.rp);
  let page = attempt.page;
  for (let i = 0; i < 5; i++) page = await submitPassword(attempt, page, 'linked@example.com', WRONG);
  expect(pageText(page.body)).toContain(SIGN_IN_LOCKED);
  expect(await bed.gh.services.lockout.lockedUntil(account.accountId)).not.toBeNull();

  // The User ID reads like any identifier with one wrong password — even with the right password, since the
  // account is locked and is not checked.
  const viaUserId = await submitPassword(attempt, page, 'linked', PASSWORD);
  const unknown = await submitPassword(attempt, page, 'never-linked', WRONG);
  expect(viaUserId.status).toBe(401);
  expect(withoutPerRequestValues(viaUserId)).toEqual(withoutPerRequestValues(unknown));
  expect(viaUserId.body).toContain(SIGN_IN_FAILED);

  // An administrator's unlock clears the identifiers' counts too: the email signs in at once.
  await bed.gh.services.admin.accountOps.setStatus(account.accountId, 'unlock', cliCall());
  page = await submitPassword(attempt, page, 'linked@example.com', PASSWORD);
  expect(isCallback(page.url)).toBe(true);
});

test('a right password clears the identifier typed and the account (one command) and nobody else’s count', async () => {
  const account = await createAccount('reset-both');
  const bystander = await createAccount('bystander');
  const { lockout } = bed.gh.services;
  const attempt = await startAuthorization(bed.rp);
  let page = attempt.page;
  for (let i = 0; i < 3; i++) page = await submitPassword(attempt, page, 'reset-both@example.com', WRONG);
  for (let i = 0; i < 2; i++) page = await submitPassword(attempt, page, 'bystander', WRONG);
  const count = async (key: string) => (await lockout.model.findById(key).lean())?.failures ?? 0;
  expect(await count(lockout.keyForIdentifier('reset-both@example.com'))).toBe(3);
  expect(await count(lockout.keyForAccount(account.accountId))).toBe(3);

  page = await submitPassword(attempt, page, 'reset-both@example.com', PASSWORD);
  expect(isCallback(page.url)).toBe(true);
  expect(await lockout.model.findById(lockout.keyForIdentifier('reset-both@example.com')).lean()).toBeNull();
  expect(await lockout.model.findById(lockout.keyForAccount(account.accountId)).lean()).toBeNull();
  // Other identifiers and accounts keep their counts.
  expect(await count(lockout.keyForIdentifier('bystander'))).toBe(2);
  expect(await count(lockout.keyForAccount(bystander.accountId))).toBe(2);

  // The count starts again from nothing: four more wrong passwords do not lock, the fifth does.
  const next = await startAuthorization(bed.rp);
  page = next.page;
  for (let i = 0; i < 4; i++) page = await submitPassword(next, page, 'reset-both@example.com', WRONG);
  expect(page.body).toContain(SIGN_IN_FAILED);
  expect(await lockout.lockedUntil(account.accountId)).toBeNull();
  page = await submitPassword(next, page, 'reset-both@example.com', WRONG);
  expect(pageText(page.body)).toContain(SIGN_IN_LOCKED);
});
