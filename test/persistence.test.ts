/**
 * Keys and cookie keys are generated once and persisted: a restarted Gatehouse on the same database
 * keeps verifying the tokens, sessions and cookies it issued before.
 */
import * as oidc from 'openid-client';
import { KEYS_COLLECTION } from '../src/oidc/keys.js';
import { startTestGatehouse, type TestGatehouse } from './support/gatehouse.js';
import { discover, exchange, isCallback, RP_REDIRECT, signIn, startAuthorization } from './support/rp.js';

let first: TestGatehouse | undefined;
let second: TestGatehouse | undefined;

afterAll(async () => {
  await first?.close();
  await second?.close();
});

test('tokens, sessions and keys survive a restart; nothing secret is stored in clear', async () => {
  first = await startTestGatehouse('persistence', { overrides: { port: 0 } });
  await first.services.accounts.create({ userId: 'frank', name: 'Frank', password: 'a sturdy passphrase' });
  const client = await first.services.clients.create({ name: 'Persistent RP', redirectUris: [RP_REDIRECT] });
  const jwksBefore = await (await fetch(`${first.url}/jwks`)).json();

  let rp = await discover(first.url, client.clientId, client.clientSecret);
  const attempt = await startAuthorization(rp);
  const callback = await signIn(attempt, 'frank', 'a sturdy passphrase');
  const tokens = await exchange(rp, attempt, callback.url);

  const stored = await first.services.connection.collection(KEYS_COLLECTION).find().toArray();
  expect(stored.map((d) => d._id)).toEqual(expect.arrayContaining(['cookies', 'signing']));
  for (const doc of stored) {
    expect(doc.sealed).toMatch(/^v1\./);
    expect(JSON.stringify(doc)).not.toMatch(/"d"\s*:/); // no private JWK member in clear
  }

  // Restart on the same port and database: same issuer, same keys.
  const port = first.config.port;
  const dbUri = first.dbUri;
  await first.close();
  first = undefined;
  second = await startTestGatehouse('persistence', { dbUri, env: { PORT: String(port) } });
  expect(second.url).toBe(`http://localhost:${port}`);
  expect(await (await fetch(`${second.url}/jwks`)).json()).toEqual(jwksBefore);

  rp = await discover(second.url, client.clientId, client.clientSecret);
  // The access token issued before the restart is still valid...
  const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, tokens.claims()!.sub);
  expect(userinfo.sub).toBe(tokens.claims()!.sub);
  // ...and so is the browser session cookie, signed with the persisted cookie keys: no password page.
  const again = await startAuthorization(rp, {}, attempt.browser);
  expect(isCallback(again.page.url)).toBe(true);
  const newTokens = await exchange(rp, again, again.page.url);
  expect(newTokens.claims()!.sub).toBe(tokens.claims()!.sub);
});
