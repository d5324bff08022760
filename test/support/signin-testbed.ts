/**
 * The set-up that the sign-in end-to-end suites share: a real SMTP server, a test clock, a Gatehouse using
 * both, and a first-party openid-client RP registered with it. Call at the top of a test file; the fields
 * are filled in by its beforeAll and everything is stopped by its afterAll.
 */
import type * as oidc from 'openid-client';
import { TestClock } from './clock.js';
import { startTestGatehouse, type TestGatehouse } from './gatehouse.js';
import { discover, RP_REDIRECT } from './rp.js';
import { TestSmtpServer } from './smtp.js';

export interface SignInTestbed {
  smtp: TestSmtpServer;
  clock: TestClock;
  gh: TestGatehouse;
  rp: oidc.Configuration;
}

export function signInTestbed(name: string): SignInTestbed {
  const bed = {} as SignInTestbed;
  beforeAll(async () => {
    bed.smtp = await new TestSmtpServer().start();
    bed.clock = new TestClock();
    bed.gh = await startTestGatehouse(name, { env: { SMTP_URL: bed.smtp.url }, clock: bed.clock });
    const client = await bed.gh.services.clients.create({ name: `${name} RP`, redirectUris: [RP_REDIRECT], firstParty: true });
    bed.rp = await discover(bed.gh.url, client.clientId, client.clientSecret);
  });
  afterAll(async () => {
    await bed.gh?.services.alerts.idle();
    await bed.gh?.close();
    await bed.smtp?.stop();
  });
  return bed;
}
