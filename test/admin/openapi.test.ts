/**
 * The OpenAPI document kept in the repository describes exactly the routes the admin API serves,
 * every response schema in it compiles, and it is what /admin/api/openapi.json serves. (Each
 * response in the other admin tests is validated against it as it arrives: see support.ts.)
 */
import { readFileSync } from 'node:fs';
import { adminRouters, OPENAPI_FILE } from '../../src/admin/router.js';
import { assertConforms, compileEveryResponseSchema, documentedOperations, openapi } from './openapi.js';
import { api, startAdminGatehouse, type AdminGatehouse } from './support.js';

let gh: AdminGatehouse;

beforeAll(async () => {
  gh = await startAdminGatehouse('admin_openapi');
});

afterAll(async () => {
  await gh?.close();
});

test('documents exactly the routes the API serves', () => {
  const { open, api: authenticated } = adminRouters(gh.services);
  const served = [...open.stack, ...authenticated.stack]
    .filter((layer) => layer.methods.length > 0)
    .flatMap((layer) => layer.methods.filter((m) => m !== 'HEAD').map((m) => `${m} ${String(layer.path).replace(/^\/admin\/api/, '').replace(/:(\w+)/g, '{$1}')}`))
    .sort();
  const documented = documentedOperations().map((o) => `${o.method.toUpperCase()} ${o.template}`).sort();
  expect(served).toEqual(documented);
});

test('is an OpenAPI 3.1 document whose every response schema compiles', () => {
  expect(openapi.openapi).toBe('3.1.0');
  for (const { method, template } of documentedOperations()) {
    const operation = openapi.paths[template]![method] as { operationId?: string; responses: Record<string, unknown> };
    expect(operation.operationId).toEqual(expect.any(String));
    expect(Object.keys(operation.responses).length).toBeGreaterThan(0);
  }
  expect(compileEveryResponseSchema()).toBeGreaterThan(100);
  // A document that satisfies a schema passes, one that does not fails: the validator really validates.
  expect(() => assertConforms('GET', '/admin/api/me', 200, { actor: { kind: 'client', id: 'x' }, clientId: 'x', scopes: ['admin'], permissions: [] })).not.toThrow();
  expect(() => assertConforms('GET', '/admin/api/me', 200, { actor: { kind: 'robot' }, clientId: 'x', scopes: [], permissions: [] })).toThrow(/does not match/);
  expect(() => assertConforms('GET', '/admin/api/accounts', 418, {})).toThrow(/does not document status 418/);
});

test('is served at /admin/api/openapi.json without a token, exactly as kept in the repository', async () => {
  const res = await api(gh, 'GET', '/openapi.json');
  expect(res.status).toBe(200);
  expect(res.body).toEqual(JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')));
});

test('unknown endpoints and methods answer in JSON too', async () => {
  const unknown = await api(gh, 'GET', '/nothing-here', { conform: false });
  expect(unknown.status).toBe(404);
  expect(unknown.body).toEqual({ error: 'not_found', error_description: 'There is no such admin API endpoint.' });
  const root = await api(gh, 'GET', '', { conform: false });
  expect(root.status).toBe(404);
  const wrongMethod = await api(gh, 'PUT', '/accounts', { body: {} });
  expect(wrongMethod.status).toBe(405);
  expect(wrongMethod.body.error).toBe('method_not_allowed');
  expect(wrongMethod.headers.get('allow')).toMatch(/GET/);
});
