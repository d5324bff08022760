/**
 * The one-time two-step enrolment and a second factor, in real Chromium, through the demo app:
 * the pages are driven by their labels and roles, as a keyboard or screen-reader user would find them.
 */
import type { Browser } from 'playwright-core';
import { launchChromium, testIfChromium } from '../support/chromium.js';
import { startTestGatehouse, type TestGatehouse } from '../support/gatehouse.js';
import { TestSmtpServer } from '../support/smtp.js';

let gh: TestGatehouse;
let smtp: TestSmtpServer;
let browser: Browser;

beforeAll(async () => {
  smtp = await new TestSmtpServer().start();
  gh = await startTestGatehouse('browser_two_step', { overrides: { demo: { enabled: true } }, env: { SMTP_URL: smtp.url } });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await gh?.close();
  await smtp?.stop();
});

testIfChromium('enrolment (security code, email as default, recovery codes) then an emailed code', async () => {
  const user = `${gh.config.demo.userId}-2fa`;
  const page = await browser.newPage();
  await page.goto(`${gh.url}/demo`);
  await page.getByRole('link', { name: 'Sign in with Gatehouse' }).click();
  await page.getByLabel('User ID or email').fill(user);
  await page.getByLabel('Password').fill(gh.config.demo.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();

  await page.getByRole('heading', { name: 'Set up two-step verification' }).waitFor();
  await page.getByRole('button', { name: 'These are correct, continue' }).click();

  await page.getByLabel('Security code').fill('654321');
  await page.getByLabel('Enter it again').fill('654321');
  await page.getByRole('button', { name: 'Save security code' }).click();
  expect(await page.getByRole('alert').textContent()).toMatch(/sequence|run|order/i);
  await page.getByLabel('Security code').fill('580317');
  await page.getByLabel('Enter it again').fill('580317');
  await page.getByRole('button', { name: 'Save security code' }).click();

  await page.getByRole('heading', { name: 'Add a mobile number (optional)' }).waitFor();
  await page.getByRole('button', { name: 'Skip this step' }).click();

  await page.getByRole('group', { name: 'Default verification method' }).waitFor();
  await page.getByLabel('Email a code to me').check();
  await page.getByRole('button', { name: 'Continue' }).click();

  const codes = await page.getByRole('list', { name: 'Recovery codes' }).getByRole('listitem').allTextContents();
  expect(codes).toHaveLength(10);
  const since = smtp.received.length;
  await page.getByRole('button', { name: 'I have saved my recovery codes' }).click();

  // Nothing was proven during enrolment, so the chosen method is challenged before the login completes.
  await page.getByRole('heading', { name: 'Verify it’s you' }).waitFor();
  await page.getByLabel('Code', { exact: true }).fill(await smtp.code(`${user}@example.com`, since));
  await page.getByRole('button', { name: 'Verify' }).click();

  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL(/\/demo\/callback/);
  const claims = JSON.parse((await page.textContent('#id-token-claims'))!);
  expect(claims).toMatchObject({ amr: ['pwd', 'otp', 'mfa'], acr: 'urn:gatehouse:acr:mfa' });
});
