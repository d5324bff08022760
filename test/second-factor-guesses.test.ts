/**
 * The account's second-factor guess limit (10 wrong codes per 15 minutes): input that cannot be a code by
 * its shape is no guess; a used-up limit (the pause) is said before a code is typed; an administrator's
 * unlock (CLI and admin API operation) lifts the pause.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generate } from 'otplib';
import { cliCall } from '../src/admin/call.js';
import { subjectFromAccount } from '../src/factors/index.js';
import { OTP_COLLECTION } from '../src/factors/otp/otp-store.js';
import { inProcessCli, type CliRunner } from './admin/in-process-cli.js';
import { api, createMachine } from './admin/support.js';
import { findForm, type Page } from './support/browser.js';
import { TEST_SECRETS_KEY } from './support/gatehouse.js';
import { pageText } from './support/pages.js';
import { isCallback, startAuthorization, type AuthorizationAttempt } from './support/rp.js';
import { signInTestbed } from './support/signin-testbed.js';

const PASSWORD = 'a long enough secret';
const bed = signInTestbed('second_factor_guesses');
let cli: CliRunner;

beforeAll(async () => {
  cli = await inProcessCli({ NODE_ENV: 'test', ISSUER: bed.gh.url, MONGODB_URI: bed.gh.dbUri, GATEHOUSE_SECRETS_KEY: TEST_SECRETS_KEY, GATEHOUSE_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'gatehouse-guesses-cli-')), SMTP_URL: bed.smtp.url });
});

async function enrolled(userId: string, market: string, defaultMethod: string) {
  const account = await bed.gh.services.accounts.create({ userId, email: `${userId}@example.com`, name: `${userId} Example`, password: PASSWORD, market });
  await bed.gh.services.accounts.model.updateOne({ userId }, { $set: { mfa: { enrolledAt: new Date(), defaultMethod, deferrals: 0 } } });
  return account;
}

async function password(login: string): Promise<AuthorizationAttempt & { after: Page }> {
  const attempt = await startAuthorization(bed.rp);
  return { ...attempt, after: await attempt.browser.submit(attempt.page, '/login', { login, password: PASSWORD }, isCallback) };
}

const post = (attempt: AuthorizationAttempt, page: Page, action: string, fields: Record<string, string> = {}) => attempt.browser.submit(page, action, fields, isCallback);
const guessesTaken = async (accountId: string) => ((await bed.gh.services.guesses.model.findById(accountId).lean())?.count ?? 0);
const failuresAudited = (accountId: string) => bed.gh.services.audit.model.countDocuments({ type: 'signin.second_factor', outcome: 'failure', 'actor.id': accountId });
const uidOf = (page: Page) => /\/interaction\/([^/?#]+)/.exec(page.url)![1]!;
const PAUSED = 'verification by code is paused for this account';

describe('input that cannot be a code is no guess', () => {
  test('email codes (8 digits in CH): junk is answered on the form and neither takes a guess nor counts against the code', async () => {
    const account = await enrolled('junk-mail', 'CH', 'email-otp');
    const since = bed.smtp.received.length;
    const attempt = await password('junk-mail');
    const code = await bed.smtp.code('junk-mail@example.com', since);
    expect(code).toHaveLength(8);
    let page = attempt.after;
    for (const junk of ['', '   ', 'abcdefgh', '1234567', '123456789', '1234 567x', code.slice(0, 6)]) {
      page = await post(attempt, page, '/second-factor', { code: junk });
      expect(page.status).toBe(400);
      expect(pageText(page.body)).toContain('Enter the 8-digit code we emailed to you.');
      expect(page.body).toContain('action="/interaction/'); // the same form, to try again
    }
    expect(await guessesTaken(account.accountId)).toBe(0);
    expect(await failuresAudited(account.accountId)).toBe(0);
    const stored = await bed.gh.services.connection.collection(OTP_COLLECTION).findOne({ accountId: account.accountId, kind: 'code' });
    expect(stored).toMatchObject({ attempts: 0, consumedAt: null });

    // A well-formed wrong code counts as before: one guess, one attempt on the code, audited.
    page = await post(attempt, page, '/second-factor', { code: code === '00000000' ? '00000001' : '00000000' });
    expect(page.status).toBe(401);
    expect(pageText(page.body)).toContain('That code is not right. Check it and try again. 4 tries left.');
    expect(await guessesTaken(account.accountId)).toBe(1);
    expect(await failuresAudited(account.accountId)).toBe(1);
    // Spaces and dashes are not part of the code: "1234 5678" is well formed and, here, right.
    page = await post(attempt, page, '/second-factor', { code: `${code.slice(0, 4)} ${code.slice(4)}` });
    expect(isCallback(page.url)).toBe(true);
  });

  test('authenticator app (6 digits) and recovery codes (their alphabet and length)', async () => {
    const account = await enrolled('junk-app', 'US', 'totp');
    const subject = subjectFromAccount(account);
    const { secret } = await bed.gh.services.factors.totp.enrol(subject);
    expect(await bed.gh.services.factors.totp.confirmEnrolment(subject, await generate({ secret, epoch: Math.floor(bed.clock.now().getTime() / 1000) }))).toMatchObject({ ok: true });
    const { codes } = await bed.gh.services.factors.recoveryCodes.enrol(subject);
    bed.clock.advance(30); // the confirmation's time step cannot be used again

    const attempt = await password('junk-app');
    expect(attempt.after.body).toContain('authenticator app');
    let page = attempt.after;
    for (const junk of ['', '12345', '1234567', '12-34-56', 'one two', '12345６']) {
      page = await post(attempt, page, '/second-factor', { code: junk });
      expect(page.status).toBe(400);
      expect(pageText(page.body)).toContain('Enter the 6-digit code from your authenticator app.');
    }
    page = await post(attempt, page, '/second-factor/method', { method: 'recovery-codes' });
    for (const junk of ['', 'abcde', 'abcde-2345', 'abcde-234567', 'abcde-2345o', codes[0]!.replace(/[a-z]/, '1')]) {
      page = await post(attempt, page, '/second-factor', { code: junk });
      expect(page.status).toBe(400);
      expect(pageText(page.body)).toContain('Enter one of your recovery codes as you saved it');
    }
    expect(await guessesTaken(account.accountId)).toBe(0);
    expect(await failuresAudited(account.accountId)).toBe(0);

    const wrong = codes[0] === 'abcde-23456' ? 'abcde-23457' : 'abcde-23456';
    page = await post(attempt, page, '/second-factor', { code: wrong.toUpperCase().replace('-', ' ') });
    expect(page.status).toBe(401);
    expect(await guessesTaken(account.accountId)).toBe(1);
    page = await post(attempt, page, '/second-factor', { code: codes[0]!.toUpperCase() });
    expect(isCallback(page.url)).toBe(true);
  });
});

describe('the pause after ten wrong codes', () => {
  test('is said on the code page before a code is typed (and no code is sent); an administrator’s unlock lifts it', async () => {
    const account = await enrolled('paused', 'US', 'email-otp');
    let since = bed.smtp.received.length;
    const attempt = await password('paused');
    const first = await bed.smtp.code('paused@example.com', since);
    const wrong = first === '000000' ? '000001' : '000000';
    let page = attempt.after;
    for (let i = 0; i < 4; i++) page = await post(attempt, page, '/second-factor', { code: wrong });
    bed.clock.advance(31);
    page = await post(attempt, page, '/second-factor/resend');
    for (let i = 0; i < 5; i++) page = await post(attempt, page, '/second-factor', { code: wrong });
    expect(await guessesTaken(account.accountId)).toBe(9);
    // The tenth wrong code takes the last guess: the answer says so at once.
    page = await post(attempt, page, '/second-factor', { code: wrong });
    expect(page.status).toBe(401);
    expect(pageText(page.body)).toContain(`For your security, ${PAUSED} after too many wrong codes. Try again in 15 minutes.`);
    expect(page.body).toMatch(/<input id="code"[^>]* disabled>/);
    expect(page.body).not.toContain('Send a new code');

    // A new sign-in: the code page says so before anything is typed, and no code is mailed.
    bed.clock.advance(60);
    since = bed.smtp.received.length;
    const again = await password('paused');
    expect(again.after.status).toBe(200);
    expect(pageText(again.after.body)).toContain(`${PAUSED} after too many wrong codes. Try again in 14 minutes.`);
    expect(again.after.body).toMatch(/<button type="submit" class="primary" disabled>Verify<\/button>/);
    expect(bed.smtp.received.length).toBe(since);
    expect(await bed.gh.services.audit.model.countDocuments({ type: 'signin.code_sent', 'actor.id': account.accountId })).toBe(2);
    // Asking for a code anyway (the page offers none) sends none; a forged post of a code is still refused.
    const { hidden } = findForm(again.after.body, '/second-factor');
    const resent = await again.browser.request(`${bed.gh.url}/interaction/${uidOf(again.after)}/second-factor/resend`, { form: hidden });
    expect(pageText(resent.body)).toContain(PAUSED);
    expect(bed.smtp.received.length).toBe(since);
    const forged = await post(again, again.after, '/second-factor', { code: '123456' });
    expect(forged.status).toBe(429);

    // The unlock (CLI) lifts the pause though the account is not locked, says so, and is audited.
    const unlocked = await cli(['account', 'unlock', 'paused']);
    expect(unlocked).toEqual({ code: 0, stderr: '', stdout: 'Unlocked account "paused" (now active). Cleared the pause after wrong two-step verification codes.\n' });
    const [entry] = await bed.gh.services.audit.model.find({ type: 'admin.account.unlocked', 'target.id': account.accountId }).lean();
    expect(entry).toMatchObject({ outcome: 'success', details: { cleared: { lockout: false, secondFactorPause: true } }, changes: { secondFactorPausedUntil: { before: expect.any(Date), after: null } } });
    expect(entry!.changes).not.toHaveProperty('status');
    expect(await guessesTaken(account.accountId)).toBe(0);

    // The next sign-in gets a code and signs in with it.
    bed.clock.advance(31);
    since = bed.smtp.received.length;
    const third = await password('paused');
    expect(pageText(third.after.body)).not.toContain(PAUSED);
    page = await post(third, third.after, '/second-factor', { code: await bed.smtp.code('paused@example.com', since) });
    expect(isCallback(page.url)).toBe(true);

    // Nothing left to clear: a conflict, as before, through the CLI and the operation.
    const nothing = await cli(['account', 'unlock', 'paused']);
    expect(nothing).toMatchObject({ code: 1, stdout: '' });
    expect(nothing.stderr).toMatch(/^error: the account is not locked, its second-factor verification is not paused, and its sign-in is not rate-limited\n$/);
    await expect(bed.gh.services.admin.accountOps.setStatus(account.accountId, 'unlock', cliCall())).rejects.toThrow(/not locked/);
  });

  test('an unlock clears a password lockout and a pause together, and says both', async () => {
    const account = await enrolled('both', 'US', 'email-otp');
    const now = bed.clock.now();
    await bed.gh.services.guesses.model.create({ _id: account.accountId, count: 10, expiresAt: new Date(now.getTime() + 600_000) });
    await bed.gh.services.lockout.model.create({ _id: bed.gh.services.lockout.keyForAccount(account.accountId), failures: 0, lockedUntil: new Date(now.getTime() + 300_000), locks: 1, lastAttemptAt: now, expiresAt: new Date(now.getTime() + 86_400_000) });
    const result = await bed.gh.services.admin.accountOps.setStatus(account.accountId, 'unlock', cliCall());
    expect(result).toMatchObject({ account: { status: 'active', lockedUntil: null }, cleared: { lockout: true, secondFactorPause: true } });
    const [entry] = await bed.gh.services.audit.model.find({ type: 'admin.account.unlocked', 'target.id': account.accountId }).lean();
    expect(entry!.changes).toMatchObject({ status: { before: 'locked', after: 'active' }, secondFactorPausedUntil: { after: null } });
    expect(await bed.gh.services.guesses.pausedUntil(account.accountId)).toBeNull();
    expect(await bed.gh.services.lockout.lockedUntil(account.accountId)).toBeNull();

    // A lockout alone: cleared, and the answer says the pause was not there (fields added, none removed).
    await bed.gh.services.lockout.model.create({ _id: bed.gh.services.lockout.keyForAccount(account.accountId), failures: 0, lockedUntil: new Date(now.getTime() + 300_000), locks: 1, lastAttemptAt: now, expiresAt: new Date(now.getTime() + 86_400_000) });
    expect(await bed.gh.services.admin.accountOps.setStatus(account.accountId, 'unlock', cliCall())).toMatchObject({ account: { status: 'active' }, cleared: { lockout: true, secondFactorPause: false } });
    // The admin API's unlock answers the same, in its documented shape (checked against openapi.json).
    await bed.gh.services.guesses.model.create({ _id: account.accountId, count: 10, expiresAt: new Date(now.getTime() + 600_000) });
    const helpdesk = await createMachine(bed.gh, 'Helpdesk robot', 'admin:helpdesk');
    const res = await api(bed.gh, 'POST', `/accounts/${account.accountId}/unlock`, { token: helpdesk.token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ account: expect.objectContaining({ accountId: account.accountId, status: 'active' }), cleared: { lockout: false, secondFactorPause: true, signInThrottle: false } });
    expect((await api(bed.gh, 'POST', `/accounts/${account.accountId}/unlock`, { token: helpdesk.token })).status).toBe(409);
    // A window not yet full is no pause: nothing to unlock, and its count stays.
    await bed.gh.services.guesses.model.create({ _id: account.accountId, count: 9, expiresAt: new Date(now.getTime() + 600_000) });
    await expect(bed.gh.services.admin.accountOps.setStatus(account.accountId, 'unlock', cliCall())).rejects.toThrow(/not locked/);
    expect(await guessesTaken(account.accountId)).toBe(9);
    // With a lockout to lift, the unlock also forgets those nine wrong codes: one more must not pause again.
    await bed.gh.services.lockout.model.create({ _id: bed.gh.services.lockout.keyForAccount(account.accountId), failures: 0, lockedUntil: new Date(now.getTime() + 300_000), locks: 1, lastAttemptAt: now, expiresAt: new Date(now.getTime() + 86_400_000) });
    expect(await bed.gh.services.admin.accountOps.setStatus(account.accountId, 'unlock', cliCall())).toMatchObject({ cleared: { lockout: true, secondFactorPause: false } });
    expect(await guessesTaken(account.accountId)).toBe(0);
  });
});
