/**
 * Fuzz-style robustness: hundreds of malformed JSON bodies, wrong content types, hostile values and
 * broken query strings across the admin API, sent with a token allowed to do everything. Every
 * answer must be a 4xx with a JSON error (never a 5xx), and the database must be exactly as before.
 */
import { createHash } from 'node:crypto';
import { api, createAdminConsole, createPerson, PASSWORD, startAdminGatehouse, type AdminGatehouse, type Person } from './support.js';

let gh: AdminGatehouse;
let admin: Person;
let accountId: string;
let clientId: string;
let tokenId: string;

/** A small seeded generator: the same cases on every run, so a failure can be reproduced. */
function rng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]! };
}

const HOSTILE_STRINGS = ['x'.repeat(5000), '\u0000', '{"$gt":""}', "'; db.dropDatabase(); //", '<script>alert(1)</script>', '../../etc/passwd', '\ud800', '%00', 'ﬀ'.repeat(3000)];
const BAD: Record<'string' | 'nullableString' | 'stringArray' | 'boolean' | 'int' | 'object', readonly unknown[]> = {
  string: [123, null, [], {}, true, { $gt: '' }, 'x'.repeat(5000), -1.5],
  nullableString: [123, [], {}, false, { $ne: null }, 'x'.repeat(5000)],
  stringArray: ['single', 1, {}, [1, 2], [null], [{ $gt: '' }], ['x'.repeat(5000)], [[]], Array.from({ length: 500 }, () => 'a')],
  boolean: ['true', 1, 0, null, [], {}, 'yes'],
  int: ['5', 1.5, -3, 0, null, [], {}, 1e12, 'Infinity'],
  object: ['keys', 1, [], null, { keys: 'x' }, { keys: [] }, { keys: [1] }],
};

type FieldKind = keyof typeof BAD;
const SCHEMAS: Array<{ method: string; path: () => string; fields: Record<string, FieldKind> }> = [
  { method: 'POST', path: () => '/accounts', fields: { userId: 'string', email: 'string', name: 'string', phone: 'string', market: 'string', roles: 'stringArray', emailVerified: 'boolean', password: 'string' } },
  { method: 'PATCH', path: () => `/accounts/${accountId}`, fields: { name: 'string', email: 'nullableString', phone: 'nullableString', market: 'string', roles: 'stringArray' } },
  {
    method: 'POST', path: () => '/clients',
    fields: { client_name: 'string', client_id: 'string', redirect_uris: 'stringArray', post_logout_redirect_uris: 'stringArray', grant_types: 'stringArray', response_types: 'stringArray', token_endpoint_auth_method: 'string', scope: 'string', jwks: 'object', first_party: 'boolean' },
  },
  {
    method: 'PATCH', path: () => `/clients/${clientId}`,
    fields: { client_name: 'string', redirect_uris: 'stringArray', post_logout_redirect_uris: 'stringArray', grant_types: 'stringArray', response_types: 'stringArray', token_endpoint_auth_method: 'string', scope: 'nullableString', jwks: 'object', first_party: 'boolean' },
  },
  { method: 'POST', path: () => '/registration-tokens', fields: { expiresInSeconds: 'int', maxUses: 'int', description: 'string' } },
];

/** Endpoints whose body is ignored: only bodies that cannot be read are sent there. */
const ACTIONS = ['disable', 'enable', 'unlock', 'reset-second-factor', 'revoke-sessions', 'invitation', 'password-reset'];

const UNREADABLE_BODIES = [
  '{', '}', '{"a":', '{"a":1,}', "{'a':1}", 'nul', 'tru', '[1,2', '"unterminated', '{"a":1}{"b":2}', '\u0000', 'NaN', '-', '{"a":01}',
  '{"__proto__":{"isAdmin":true}}', '{"constructor":{"prototype":{"isAdmin":true}}}', 'x'.repeat(70_000), `${'['.repeat(40_000)}${']'.repeat(20_000)}`, '1', '"text"', 'true', 'null', '[]', '[{}]',
];

const BAD_QUERIES = [
  'limit=0', 'limit=-5', 'limit=1e3', 'limit=%00', 'limit=9999999999999999999', 'limit=1&limit=2', 'cursor=', 'cursor=%FF%FE', `cursor=${'A'.repeat(600)}`, 'cursor=eyJ4Ijp7IiRndCI6MX19',
  `cursor=${Buffer.from('["accounts",{"$gt":""}]').toString('base64url')}`, `cursor=${Buffer.from('["audit","not-a-date","0123456789abcdef01234567"]').toString('base64url')}`,
  'q=', `q=${'a'.repeat(300)}`, 'q[$regex]=.*', 'q[]=a', 'status[$ne]=active', 'role=Admin', 'role[$exists]=true', 'since=2020-02-30T00:00:00Z', 'until=tomorrow', 'type=a|b', 'type=$where',
  'outcome[$in][]=success', 'actor[$ne]=x', 'requestId=' + 'r'.repeat(300), 'unknown=1', '%E0%A4%A', 'limit=%E0%A4%A',
];

beforeAll(async () => {
  gh = await startAdminGatehouse('admin_fuzz');
  const console_ = await createAdminConsole(gh);
  admin = await createPerson(gh, console_.rp, 'root', ['admin']);
  accountId = (await gh.services.accounts.create({ userId: 'fuzz-target', name: 'Fuzz Target', email: 'fuzz@example.com', password: PASSWORD })).accountId;
  clientId = (await gh.services.clients.create({ name: 'Fuzz client', redirectUris: ['https://fuzz.example.com/cb'] })).clientId;
  tokenId = (await gh.services.admin.registrationTokens.mint({ maxUses: 3 })).id;
});

afterAll(async () => {
  await gh?.close();
});

/** A fingerprint of every collection's documents: equal before and after means nothing changed. */
async function databaseFingerprint(): Promise<Record<string, string>> {
  const db = gh.services.connection.db!;
  const out: Record<string, string> = {};
  for (const { name } of await db.listCollections({}, { nameOnly: true }).toArray()) {
    const docs = await db.collection(name).find({}).sort({ _id: 1 }).toArray();
    out[name] = createHash('sha256').update(JSON.stringify(docs)).digest('hex');
  }
  return out;
}

interface Case {
  method: string;
  path: string;
  rawBody?: string;
  contentType?: string;
}

function cases(): Case[] {
  const random = rng(20_240_611);
  const out: Case[] = [];
  // Hostile JSON values, at least one bad field per body (so none of them is a valid change).
  for (let i = 0; i < 200; i++) {
    const schema = random.pick(SCHEMAS);
    const names = Object.keys(schema.fields);
    const body: Record<string, unknown> = {};
    const count = 1 + Math.floor(random.next() * 3);
    for (let f = 0; f < count; f++) {
      const name = random.pick(names);
      body[name] = random.pick(BAD[schema.fields[name]!]);
    }
    if (random.next() < 0.2) body[random.pick(['$where', '__proto__', 'status', 'passwordHash', 'client_secret', random.pick(HOSTILE_STRINGS).slice(0, 40)])] = random.pick(HOSTILE_STRINGS);
    out.push({ method: schema.method, path: schema.path(), rawBody: JSON.stringify(body) });
  }
  // Unreadable bodies and wrong content types, on every endpoint that takes a body.
  const bodyPaths: Array<[string, string]> = [
    ...SCHEMAS.map((s) => [s.method, s.path()] as [string, string]),
    ...ACTIONS.map((a) => ['POST', `/accounts/${accountId}/${a}`] as [string, string]),
    ['POST', `/clients/${clientId}/secret`],
    ['DELETE', `/clients/${clientId}`],
    ['DELETE', `/registration-tokens/${tokenId}`],
  ];
  for (const [method, path] of bodyPaths) {
    for (const rawBody of UNREADABLE_BODIES.filter(() => random.next() < 0.45)) out.push({ method, path, rawBody });
    out.push({ method, path, rawBody: '{"name":"x"}', contentType: 'text/plain' });
    out.push({ method, path, rawBody: 'name=x', contentType: 'application/x-www-form-urlencoded' });
    out.push({ method, path, rawBody: '<a/>', contentType: 'application/xml' });
    out.push({ method, path, rawBody: '{}', contentType: 'application/json; charset=utf-16' });
  }
  // Broken query strings on the lists.
  for (const list of ['/accounts', '/clients', '/audit']) {
    for (const query of BAD_QUERIES) out.push({ method: 'GET', path: `${list}?${query}` });
  }
  // Ids that cannot exist.
  for (const id of ['%00', '..%2F..%2Fclients', 'a'.repeat(300), '%7B%22%24gt%22%3A%22%22%7D', '%E2%80%AE']) {
    out.push({ method: 'GET', path: `/accounts/${id}` }, { method: 'GET', path: `/clients/${id}` }, { method: 'PATCH', path: `/clients/${id}`, rawBody: '{"client_name":"x"}' }, { method: 'POST', path: `/accounts/${id}/disable` });
  }
  return out;
}

test('hundreds of malformed requests all get a 4xx JSON error, and change nothing', async () => {
  const all = cases();
  expect(all.length).toBeGreaterThan(300);
  const before = await databaseFingerprint();
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < all.length) {
      const c = all[next++]!;
      const res = await api(gh, c.method, c.path, {
        token: admin.token,
        ...(c.rawBody !== undefined ? { rawBody: c.rawBody, headers: { 'content-type': c.contentType ?? 'application/json' } } : {}),
      });
      const ok = res.status >= 400 && res.status < 500 && typeof res.body.error === 'string' && typeof res.body.error_description === 'string';
      if (!ok) failures.push(`${c.method} ${c.path.slice(0, 80)} ${String(c.rawBody).slice(0, 80)} → ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  expect(failures).toEqual([]);
  expect(await databaseFingerprint()).toEqual(before);
  // The target records are intact and the API still serves them.
  expect((await api(gh, 'GET', `/accounts/${accountId}`, { token: admin.token })).body).toMatchObject({ name: 'Fuzz Target', status: 'active' });
  expect((await api(gh, 'GET', `/clients/${clientId}`, { token: admin.token })).body).toMatchObject({ client_name: 'Fuzz client' });
});

test('a body sent without any Content-Type is refused, not ignored: the action does not run', async () => {
  const { request } = await import('node:http');
  const target = new URL(`${gh.url}/admin/api/accounts/${accountId}/disable`);
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(target, { method: 'POST', headers: { authorization: `Bearer ${admin.token}`, accept: 'application/json', 'content-length': '17' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end('{"garbled":true}\n');
  });
  expect(status).toBe(415);
  expect((await api(gh, 'GET', `/accounts/${accountId}`, { token: admin.token })).body.status).toBe('active');
});
