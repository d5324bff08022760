/**
 * The newcomer's first minute, in real Chromium: the demo app's "Sign in" button runs the code flow
 * through Gatehouse's sign-in and consent pages and shows the ID token claims; "Sign out" ends it.
 */
import type { Browser } from 'playwright-core';
import { launchChromium, testIfChromium } from '../support/chromium.js';
import { startTestGatehouse, type TestGatehouse } from '../support/gatehouse.js';

let gh: TestGatehouse;
let browser: Browser;

beforeAll(async () => {
  gh = await startTestGatehouse('browser_demo', { overrides: { demo: { enabled: true } } });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await gh?.close();
});

testIfChromium('demo sign-in, consent, claims and sign-out in a real browser', async () => {
  const page = await browser.newPage();
  await page.goto(`${gh.url}/demo`);
  await page.getByRole('link', { name: 'Sign in with Gatehouse' }).click();

  await page.waitForURL(/\/interaction\//);
  expect(await page.getByRole('heading', { name: 'Sign in' }).isVisible()).toBe(true);
  await page.getByLabel('User ID or email').fill('demo');
  await page.getByLabel('Password').fill('wrong password!!');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  expect(await page.getByRole('alert').textContent()).toContain('incorrect');

  await page.getByLabel('User ID or email').fill(gh.config.demo.userId);
  await page.getByLabel('Password').fill(gh.config.demo.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();

  await page.getByRole('heading', { name: 'Allow access?' }).waitFor();
  expect(await page.textContent('main')).toContain('Gatehouse demo app');
  await page.getByRole('button', { name: 'Allow' }).click();

  await page.waitForURL(/\/demo\/callback/);
  const claims = JSON.parse((await page.textContent('#id-token-claims'))!);
  const account = await gh.services.accounts.findByLogin(gh.config.demo.userId);
  expect(claims).toMatchObject({ sub: account!.accountId, amr: ['pwd'], acr: 'urn:gatehouse:acr:pwd', iss: gh.url, aud: gh.config.demo.clientId });
  const userinfo = JSON.parse((await page.textContent('#userinfo'))!);
  expect(userinfo).toMatchObject({ preferred_username: 'demo', email: 'demo@example.com' });

  await page.getByRole('link', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Yes, sign me out' }).click();
  await page.waitForURL(`${gh.url}/demo`);
  expect(await page.getByRole('link', { name: 'Sign in with Gatehouse' }).isVisible()).toBe(true);

  // Signed out of Gatehouse too: signing in again asks for the password.
  await page.getByRole('link', { name: 'Sign in with Gatehouse' }).click();
  await page.waitForURL(/\/interaction\//);
  expect(await page.getByLabel('Password').isVisible()).toBe(true);
});

testIfChromium('after the demo client\'s secret is rotated, the demo app signs in with the new one', async () => {
  await gh.services.clients.rotateSecret(gh.config.demo.clientId);
  const page = await browser.newPage();
  await page.goto(`${gh.url}/demo`);
  await page.getByRole('link', { name: 'Sign in with Gatehouse' }).click();
  await page.waitForURL(/\/interaction\//);
  await page.getByLabel('User ID or email').fill(gh.config.demo.userId);
  await page.getByLabel('Password').fill(gh.config.demo.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  // Consent was given in the first test; whether it is asked again does not matter here.
  const allow = page.getByRole('button', { name: 'Allow' });
  await Promise.race([page.waitForURL(/\/demo\/callback/), allow.waitFor()]);
  if (await allow.isVisible()) await allow.click();
  await page.waitForURL(/\/demo\/callback/);
  expect(await page.locator('#id-token-claims').count()).toBe(1);
  expect(JSON.parse((await page.textContent('#id-token-claims'))!)).toMatchObject({ aud: gh.config.demo.clientId });
});

testIfChromium('a form_post response submits itself in the browser (its inline script is allowed by the page\'s policy)', async () => {
  const page = await browser.newPage();
  const redirectUri = `${gh.url}/demo/callback`;
  const authorize = new URL('/auth', gh.url);
  authorize.search = new URLSearchParams({
    client_id: gh.config.demo.clientId, response_type: 'code', response_mode: 'form_post', scope: 'openid', redirect_uri: redirectUri,
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', state: 'form-post-state',
  }).toString();
  await page.goto(authorize.href);
  // A new page is a new browser context: no session, so the sign-in form is shown.
  await page.waitForURL(/\/interaction\//);
  await page.getByLabel('User ID or email').fill(gh.config.demo.userId);
  await page.getByLabel('Password').fill(gh.config.demo.password);
  const posted = page.waitForRequest((req) => req.method() === 'POST' && req.url() === redirectUri, { timeout: 15_000 });
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  const allow = page.getByRole('button', { name: 'Allow' });
  await Promise.race([posted, allow.waitFor()]);
  if (await allow.isVisible()) await allow.click();
  const form = new URLSearchParams((await posted).postData() ?? '');
  expect(form.get('state')).toBe('form-post-state');
  expect(form.get('code')).toBeTruthy();
});
