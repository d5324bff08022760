/**
 * What an attacker or a clumsy client meets: failed sign-ins that all look alike, friendly error
 * pages, and malformed posts that get a 4xx, never a 500.
 */
import type * as oidc from 'openid-client';
import { Browser, findForm, type Page } from './support/browser.js';
import { startTestGatehouse, type TestGatehouse } from './support/gatehouse.js';
import { discover, isCallback, RP_REDIRECT, startAuthorization } from './support/rp.js';

let gh: TestGatehouse;
let rp: oidc.Configuration;
const PASSWORD = 'a long enough secret';

beforeAll(async () => {
  gh = await startTestGatehouse('signin_negative');
  await gh.services.accounts.create({ userId: 'carol', email: 'carol@example.com', name: 'Carol', password: PASSWORD });
  const disabled = await gh.services.accounts.create({ userId: 'dave', email: 'dave@example.com', name: 'Dave', password: PASSWORD });
  await gh.services.accounts.model.updateOne({ _id: disabled._id }, { $set: { status: 'disabled' } });
  const client = await gh.services.clients.create({ name: 'Negative RP', redirectUris: [RP_REDIRECT] });
  rp = await discover(gh.url, client.clientId, client.clientSecret);
});

afterAll(async () => {
  await gh?.close();
});

/** The page with everything that differs per interaction (its id, its CSRF token) blanked out. */
function withoutTokens(page: Page, uid: string): string {
  const { hidden } = findForm(page.body, '/login');
  return page.body.replaceAll(uid, '<uid>').replaceAll(hidden.csrf!, '<csrf>');
}

function uidOf(page: Page): string {
  return /\/interaction\/([^/?#]+)/.exec(page.url)![1]!;
}

async function failedSignIn(login: string, password: string): Promise<{ page: Page; normalized: string }> {
  const attempt = await startAuthorization(rp);
  const uid = uidOf(attempt.page);
  const page = await attempt.browser.submit(attempt.page, '/login', { login, password }, isCallback);
  return { page, normalized: withoutTokens(page, uid) };
}

describe('failed sign-ins reveal nothing', () => {
  test('wrong password, unknown user and a disabled account get byte-identical pages apart from tokens', async () => {
    const wrongPassword = await failedSignIn('carol', 'not the password at all');
    const unknownUser = await failedSignIn('nobody-here', 'not the password at all');
    const disabled = await failedSignIn('dave', PASSWORD);
    expect(wrongPassword.page.status).toBe(401);
    expect(wrongPassword.page.body).toContain('The User ID, email or password you entered is incorrect.');
    expect(unknownUser.page.status).toBe(wrongPassword.page.status);
    expect(disabled.page.status).toBe(wrongPassword.page.status);
    expect(unknownUser.normalized).toBe(wrongPassword.normalized);
    expect(disabled.normalized).toBe(wrongPassword.normalized);
  });

  test('every attempt is audited with its outcome, IP and client, without the password', async () => {
    const events = await gh.services.audit.model.find({ type: 'signin.password' }).lean();
    const failures = events.filter((e) => e.outcome === 'failure');
    expect(failures.length).toBeGreaterThanOrEqual(3);
    expect(failures.map((e) => e.details?.reason)).toEqual(expect.arrayContaining(['wrong_password', 'unknown_account', 'account_disabled']));
    for (const event of events) {
      expect(event.ip).toBeTruthy();
      expect(event.clientId).toBe(rp.clientMetadata().client_id);
      expect(JSON.stringify(event)).not.toContain(PASSWORD);
      expect(JSON.stringify(event)).not.toContain('not the password at all');
    }
  });

  test('a disabled account cannot use an existing session either', async () => {
    const browser = new Browser();
    const attempt = await startAuthorization(rp, {}, browser);
    await gh.services.accounts.create({ userId: 'erin', name: 'Erin', password: PASSWORD });
    const consent = await browser.submit(attempt.page, '/login', { login: 'erin', password: PASSWORD }, isCallback);
    await browser.submit(consent, '/confirm', {}, isCallback);
    await gh.services.accounts.model.updateOne({ userId: 'erin' }, { $set: { status: 'disabled' } });
    const again = await startAuthorization(rp, {}, browser);
    expect(isCallback(again.page.url)).toBe(false);
    expect(again.page.body).toContain('name="password"');
  });
});

describe('error pages', () => {
  test('an unregistered redirect_uri gets a friendly page and no redirect', async () => {
    const attempt = await startAuthorization(rp, { redirect_uri: 'https://evil.example/callback' });
    expect(attempt.page.status).toBe(400);
    expect(attempt.page.headers.get('location')).toBeNull();
    expect(attempt.page.body).toContain('The application asked to return to an address it has not registered.');
    expect(attempt.page.body).not.toMatch(/at \w+ \(/); // no stack trace
  });

  test('an unknown client gets a friendly page', async () => {
    const page = await new Browser().follow(`${gh.url}/auth?client_id=no-such-client&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(RP_REDIRECT)}`);
    expect(page.status).toBe(400);
    expect(page.body).toContain('This application is not registered with Gatehouse');
  });

  test('an expired interaction gets a friendly page with a way back', async () => {
    const attempt = await startAuthorization(rp);
    const uid = uidOf(attempt.page);
    // Expired in the database but not yet swept by the TTL monitor: it must be treated as gone.
    await gh.services.connection.collection('oidc_interaction').updateOne({ _id: uid as never }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
    const page = await attempt.browser.request(attempt.page.url);
    expect(page.status).toBe(400);
    expect(page.body).toContain('This sign-in page has expired or was already used.');
    expect(page.body).toContain('href="/"');
    const post = await attempt.browser.submit(attempt.page, '/login', { login: 'carol', password: PASSWORD });
    expect(post.status).toBe(400);
  });

  test('an unknown interaction id gets the same friendly page', async () => {
    const page = await new Browser().request(`${gh.url}/interaction/does-not-exist`);
    expect(page.status).toBe(400);
    expect(page.body).toContain('This sign-in page has expired or was already used.');
  });

  test('an unknown path is a 404 page, and JSON when JSON is asked for', async () => {
    const html = await new Browser().request(`${gh.url}/no/such/page`);
    expect(html.status).toBe(404);
    expect(html.body).toContain('Page not found');
    const json = await fetch(`${gh.url}/no/such/page`, { headers: { accept: 'application/json' } });
    expect(json.status).toBe(404);
    expect(await json.json()).toMatchObject({ error: 'not_found' });
  });
});

describe('malformed form posts get a 4xx, never a 500', () => {
  let attempt: Awaited<ReturnType<typeof startAuthorization>>;
  let action: string;
  let csrf: string;

  beforeAll(async () => {
    attempt = await startAuthorization(rp);
    const form = findForm(attempt.page.body, '/login');
    action = new URL(form.action, attempt.page.url).href;
    csrf = form.hidden.csrf!;
  });

  const post = (body: string, contentType = 'application/x-www-form-urlencoded', extra: Record<string, string> = {}) =>
    attempt.browser.request(action, { method: 'POST', body, headers: { 'content-type': contentType, ...extra } });

  test.each([
    ['missing password', () => `csrf=${csrf}&login=carol`, 400],
    ['missing login', () => `csrf=${csrf}&password=x`, 400],
    ['empty fields', () => `csrf=${csrf}&login=&password=`, 400],
    ['repeated fields (arrays)', () => `csrf=${csrf}&login=a&login=b&password=x`, 400],
    ['nested fields', () => `csrf=${csrf}&login[a]=b&password=x`, 400],
    ['a 5000-character login', () => `csrf=${csrf}&login=${'a'.repeat(5000)}&password=x`, 400],
    ['a huge body', () => `csrf=${csrf}&login=carol&password=${'x'.repeat(200_000)}`, 413],
    ['no CSRF token', () => 'login=carol&password=x', 403],
    ['a wrong CSRF token', () => `csrf=${'A'.repeat(43)}&login=carol&password=x`, 403],
    ['a CSRF token of a wrong type', () => `csrf[]=1&login=carol&password=x`, 403],
  ])('%s', async (_name, body, status) => {
    const page = await post(body());
    expect(page.status).toBe(status);
    expect(page.body).toContain('Gatehouse');
  });

  test('invalid percent-encoding', async () => {
    const page = await post(`csrf=${csrf}&login=%E0%A4%A&password=x`);
    expect(page.status).toBeGreaterThanOrEqual(400);
    expect(page.status).toBeLessThan(500);
  });

  test('a body that claims gzip but is not', async () => {
    const page = await post('this is not gzip', undefined, { 'content-encoding': 'gzip' });
    expect(page.status).toBeGreaterThanOrEqual(400);
    expect(page.status).toBeLessThan(500);
  });

  test('a JSON body', async () => {
    const page = await post(JSON.stringify({ csrf, login: 'carol', password: PASSWORD }), 'application/json');
    expect(page.status).toBeGreaterThanOrEqual(400);
    expect(page.status).toBeLessThan(500);
  });

  test('a cross-site post is refused even with a valid token', async () => {
    const page = await post(`csrf=${csrf}&login=carol&password=${encodeURIComponent(PASSWORD)}`, undefined, { origin: 'https://evil.example' });
    expect(page.status).toBe(403);
  });

  test('after all that, the same interaction still signs in', async () => {
    const page = await post(`csrf=${csrf}&login=carol&password=${encodeURIComponent(PASSWORD)}`);
    expect(page.status).toBe(303);
  });
});
