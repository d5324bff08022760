/**
 * The provider's machine endpoints (/token, /me, discovery, …) skip our pages and routers (src/app.ts,
 * PROVIDER_ENDPOINTS) but still pass the request id, security headers and error boundary, and our own
 * routes are still served around them.
 */
import { PROVIDER_ENDPOINTS } from '../../src/app.js';
import { startTestGatehouse, type TestGatehouse } from '../support/gatehouse.js';

let gh: TestGatehouse;

beforeAll(async () => {
  gh = await startTestGatehouse('provider_endpoints');
});

afterAll(async () => {
  await gh?.close();
});

test('provider endpoints keep the request id and security headers', async () => {
  const discovery = await fetch(`${gh.url}/.well-known/openid-configuration`, { headers: { 'x-request-id': 'bench-check-0001' } });
  expect(discovery.status).toBe(200);
  expect(discovery.headers.get('x-request-id')).toBe('bench-check-0001');
  expect(discovery.headers.get('x-content-type-options')).toBe('nosniff');
  const meta = (await discovery.json()) as Record<string, string>;
  // Every skipped path is one the provider announces (and so serves) itself.
  const announced = [meta.token_endpoint, meta.userinfo_endpoint, meta.jwks_uri, meta.introspection_endpoint, meta.revocation_endpoint].map((u) => new URL(u!).pathname);
  expect([...PROVIDER_ENDPOINTS].sort()).toEqual([...announced, '/.well-known/openid-configuration'].sort());

  const token = await fetch(`${gh.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
  // No client authentication: oidc-provider's own OAuth error, as JSON.
  expect(token.status).toBe(400);
  expect(((await token.json()) as { error: string }).error).toBe('invalid_request');
  expect(token.headers.get('x-request-id')).toMatch(/^[\w.-]{8,64}$/);
  expect(token.headers.get('referrer-policy')).toBe('no-referrer');
});

test('our own pages and unknown paths are unchanged', async () => {
  const health = await fetch(`${gh.url}/health`);
  expect(health.status).toBe(200);
  const home = await fetch(`${gh.url}/`);
  expect(home.status).toBe(200);
  expect(home.headers.get('content-type')).toMatch(/html/);
  const missing = await fetch(`${gh.url}/token/nothing-here`, { headers: { accept: 'application/json' } });
  expect(missing.status).toBe(404);
});

test('the favicon: pages link the SVG, and /favicon.ico redirects to it instead of a 404', async () => {
  const home = await (await fetch(`${gh.url}/`)).text();
  expect(home).toContain('<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">');
  const ico = await fetch(`${gh.url}/favicon.ico`, { redirect: 'manual' });
  expect(ico.status).toBe(301);
  expect(new URL(ico.headers.get('location')!, gh.url).pathname).toBe('/assets/favicon.svg');
  const svg = await fetch(`${gh.url}/favicon.ico`);
  expect(svg.status).toBe(200);
  expect(svg.headers.get('content-type')).toBe('image/svg+xml');
  expect(await svg.text()).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
});
