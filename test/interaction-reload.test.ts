/**
 * Reloading a sign-in step: after a POST the address bar shows the form's URL, and a reload (or Enter in
 * the address bar) sends a GET there. It must lead back to the interaction's page, never to a bare 405,
 * and never anywhere but that interaction.
 */
import type { Page } from './support/browser.js';
import { isCallback, startAuthorization, type AuthorizationAttempt } from './support/rp.js';
import { signInTestbed } from './support/signin-testbed.js';

const PASSWORD = 'a long enough secret';
const bed = signInTestbed('interaction_reload');

const uidOf = (page: Page) => /\/interaction\/([^/?#]+)/.exec(page.url)![1]!;

/** A GET on `path` of the interaction: a 303 to the interaction's page, which then shows (200 HTML). */
async function reload(attempt: AuthorizationAttempt, uid: string, path: string): Promise<Page> {
  const redirect = await attempt.browser.request(`${bed.gh.url}/interaction/${uid}${path}`);
  expect(redirect.status).toBe(303);
  expect(redirect.headers.get('location')).toBe(`/interaction/${uid}`);
  const page = await attempt.browser.request(new URL(redirect.headers.get('location')!, bed.gh.url).href);
  expect(page.status).toBe(200);
  expect(page.headers.get('content-type')).toMatch(/^text\/html/);
  return page;
}

test('a GET on the password form after a wrong password goes back to the sign-in page', async () => {
  await bed.gh.services.accounts.create({ userId: 'reloader', email: 'reloader@example.com', name: 'Re Loader', password: PASSWORD, market: 'LAB' });
  const attempt = await startAuthorization(bed.rp);
  const uid = uidOf(attempt.page);
  const wrong = await attempt.browser.submit(attempt.page, '/login', { login: 'reloader', password: 'not the password' }, isCallback);
  expect(wrong.status).toBe(401);
  expect(wrong.url).toBe(`${bed.gh.url}/interaction/${uid}/login`);
  const page = await reload(attempt, uid, '/login');
  expect(page.body).toContain('name="password"');
  // The page it leads to still works: the right password signs in.
  const done = await attempt.browser.submit(page, '/login', { login: 'reloader', password: PASSWORD }, isCallback);
  expect(isCallback(done.url)).toBe(true);
});

test('GETs on enrolment and second-factor URLs show the step the flow is at', async () => {
  await bed.gh.services.accounts.create({ userId: 'enroller', email: 'enroller@example.com', name: 'En Roller', password: PASSWORD, market: 'US' });
  const attempt = await startAuthorization(bed.rp);
  const uid = uidOf(attempt.page);
  let page = await attempt.browser.submit(attempt.page, '/login', { login: 'enroller', password: PASSWORD }, isCallback);
  expect(page.body).toContain('Set up two-step verification');
  // Every step URL, whichever step the flow is at, leads to the current step.
  for (const path of ['/login', '/enrol/profile', '/enrol/security-code', '/enrol/phone', '/enrol/totp', '/second-factor', '/confirm']) {
    expect((await reload(attempt, uid, path)).body).toContain('Set up two-step verification');
  }
  page = await attempt.browser.submit(page, '/enrol/profile', {}, isCallback);
  expect(page.body).toContain('Create your security code');
  page = await attempt.browser.submit(page, '/enrol/security-code', { code: '402781', confirm: '4027' }, isCallback);
  expect(page.url).toBe(`${bed.gh.url}/interaction/${uid}/enrol/security-code`);
  page = await reload(attempt, uid, '/enrol/security-code');
  expect(page.body).toContain('Create your security code');
  // A HEAD (some browsers probe) is redirected alike.
  const head = await attempt.browser.request(`${bed.gh.url}/interaction/${uid}/enrol/phone`, { method: 'HEAD' });
  expect(head.status).toBe(303);
  expect(head.headers.get('location')).toBe(`/interaction/${uid}`);

  // The step's forms keep their CSRF check: a POST without the token is still refused.
  const forged = await attempt.browser.request(`${bed.gh.url}/interaction/${uid}/enrol/security-code`, { form: { code: '402781', confirm: '402781' } });
  expect(forged.status).toBe(403);
});

test('a GET on the code form of an enrolled account shows the code page again without sending another code', async () => {
  await bed.gh.services.accounts.create({ userId: 'coder', email: 'coder@example.com', name: 'Co Der', password: PASSWORD, market: 'US' });
  await bed.gh.services.accounts.model.updateOne({ userId: 'coder' }, { $set: { mfa: { enrolledAt: new Date(), defaultMethod: 'email-otp', deferrals: 0 } } });
  const attempt = await startAuthorization(bed.rp);
  const uid = uidOf(attempt.page);
  const since = bed.smtp.received.length;
  let page = await attempt.browser.submit(attempt.page, '/login', { login: 'coder', password: PASSWORD }, isCallback);
  const code = await bed.smtp.code('coder@example.com', since);
  page = await attempt.browser.submit(page, '/second-factor', { code: code === '999999' ? '999998' : '999999' }, isCallback);
  expect(page.status).toBe(401);
  for (const path of ['/second-factor', '/second-factor/method', '/second-factor/resend']) {
    expect((await reload(attempt, uid, path)).body).toContain('Enter the code we emailed to');
  }
  expect(bed.smtp.received.length).toBe(since + 1);
  page = await reload(attempt, uid, '/second-factor');
  const done = await attempt.browser.submit(page, '/second-factor', { code }, isCallback);
  expect(isCallback(done.url)).toBe(true);
});

test('only a well-formed interaction id is redirected to; an unknown one then gets the friendly expired page', async () => {
  const attempt = await startAuthorization(bed.rp);
  for (const bad of ['%2F%2Fevil.example', '..%2F..%2Fadmin', 'a%20b', 'x'.repeat(65)]) {
    const page = await attempt.browser.request(`${bed.gh.url}/interaction/${bad}/login`);
    expect(page.status).toBe(404);
    expect(page.headers.get('location')).toBeNull();
  }
  const unknown = await attempt.browser.request(`${bed.gh.url}/interaction/AAAAAAAAAAAAAAAAAAAAA/second-factor`);
  expect(unknown.status).toBe(303);
  expect(unknown.headers.get('location')).toBe('/interaction/AAAAAAAAAAAAAAAAAAAAA');
  const expired = await attempt.browser.request(`${bed.gh.url}/interaction/AAAAAAAAAAAAAAAAAAAAA`);
  expect(expired.status).toBe(400);
  expect(expired.body).toContain('This sign-in page has expired or was already used.');
});
