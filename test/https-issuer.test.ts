/**
 * Behind a TLS-terminating proxy with an https issuer: cookies are Secure, and anything that did not
 * arrive over https is redirected (GET) or refused, never served in clear.
 */
import { startTestGatehouse, type TestGatehouse } from './support/gatehouse.js';

let gh: TestGatehouse;
let local: string;
let clientId: string;

beforeAll(async () => {
  gh = await startTestGatehouse('https_issuer', { env: { ISSUER: 'https://login.example.test' } });
  local = `http://localhost:${(gh.server.address() as { port: number }).port}`;
  clientId = (await gh.services.clients.create({ name: 'TLS RP', redirectUris: ['https://rp.example.test/cb'] })).clientId;
});

afterAll(async () => {
  await gh?.close();
});

const authorize = () => `/auth?client_id=${clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('https://rp.example.test/cb')}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`;

// What the TLS-terminating proxy adds to each request it forwards.
const viaProxy = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'login.example.test' };

test('discovery names the https issuer and endpoints', async () => {
  const meta = (await (await fetch(`${local}/.well-known/openid-configuration`, { headers: viaProxy })).json()) as Record<string, string>;
  expect(meta.issuer).toBe('https://login.example.test');
  expect(meta.authorization_endpoint).toBe('https://login.example.test/auth');
});

test('cookies are Secure, HttpOnly and SameSite when the request came over https', async () => {
  const response = await fetch(`${local}${authorize()}`, { headers: viaProxy, redirect: 'manual' });
  expect(response.status).toBe(303);
  const cookies = response.headers.getSetCookie();
  expect(cookies.length).toBeGreaterThan(0);
  for (const cookie of cookies) {
    expect(cookie).toMatch(/;\s*secure/i);
    expect(cookie).toMatch(/;\s*httponly/i);
    expect(cookie).toMatch(/;\s*samesite=lax/i);
  }
  expect(response.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
});

test('the https redirect never leaves the issuer origin', async () => {
  for (const path of ['//evil.example/phish', '/\\evil.example/x']) {
    const response = await fetch(`${local}${path}`, { redirect: 'manual' });
    expect(response.status).toBe(301);
    expect(response.headers.get('location')).toBe('https://login.example.test/');
  }
});

test('a plain-http GET is redirected to https, a plain-http POST is refused', async () => {
  const get = await fetch(`${local}${authorize()}`, { redirect: 'manual' });
  expect(get.status).toBe(301);
  expect(get.headers.get('location')).toBe(`https://login.example.test${authorize()}`);
  expect(get.headers.getSetCookie()).toEqual([]);

  const post = await fetch(`${local}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: 'grant_type=client_credentials' });
  expect(post.status).toBe(400);
  expect(await post.json()).toMatchObject({ error_description: 'Gatehouse only accepts requests over https.' });
});
