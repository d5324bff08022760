/**
 * The audit log: what oidc-provider's own endpoints record (sign-out, consent revoked, token
 * revoked), request ids shared with the logs, the query API's filters and cursor, retention, the
 * append-only rule, and that no secret — password, client secret, token, code, invitation or
 * registration token — ever reaches the audit log or the logs.
 */
import * as oidc from 'openid-client';
import mongoose, { Types } from 'mongoose';
import { AuditLog, storedEntry } from '../../src/audit/audit.js';
import { createLogger } from '../../src/logger.js';
import { TestSmtpServer } from '../support/smtp.js';
import { discover, exchange, isCallback, RP_REDIRECT, signIn, startAuthorization } from '../support/rp.js';
import { api, auditEntries, createAdminConsole, createMachine, createPerson, PASSWORD, startAdminGatehouse, waitForAudit, type AdminConsole, type AdminGatehouse, type Person } from './support.js';

let smtp: TestSmtpServer;
let gh: AdminGatehouse;
let console_: AdminConsole;
let admin: Person;
let auditor: Person;

beforeAll(async () => {
  smtp = await new TestSmtpServer().start();
  gh = await startAdminGatehouse('admin_audit', { env: { SMTP_URL: smtp.url } });
  console_ = await createAdminConsole(gh);
  [admin, auditor] = await Promise.all([createPerson(gh, console_.rp, 'root', ['admin']), createPerson(gh, console_.rp, 'watcher', ['auditor'])]);
});

afterAll(async () => {
  await gh?.close();
  await smtp?.stop();
});

describe("oidc-provider's own events", () => {
  test('sign-out, consent revoked and token revoked are recorded with who, where from and the request id', async () => {
    const web = await gh.services.clients.create({ name: 'Audited RP', redirectUris: [RP_REDIRECT], postLogoutRedirectUris: ['http://localhost:8976/bye'] });
    const rp = await discover(gh.url, web.clientId, web.clientSecret);
    const attempt = await startAuthorization(rp, { scope: 'openid offline_access', prompt: 'consent' });
    const tokens = await exchange(rp, attempt, (await signIn(attempt, 'watcher', PASSWORD)).url);
    expect(await waitForAudit(gh, { type: 'consent.granted', 'actor.id': auditor.accountId, clientId: web.clientId })).toMatchObject({ outcome: 'success' });

    // The RP revokes its refresh token: the token and the grant behind it are both recorded.
    await oidc.tokenRevocation(rp, tokens.refresh_token!);
    const revoked = await waitForAudit(gh, { type: 'token.revoked', clientId: web.clientId });
    expect(revoked).toMatchObject({ actor: { kind: 'client', id: web.clientId }, details: { kind: 'RefreshToken', accountId: auditor.accountId }, ip: expect.any(String) });
    expect(await waitForAudit(gh, { type: 'consent.revoked', clientId: web.clientId })).toMatchObject({ actor: { kind: 'client', id: web.clientId }, target: { kind: 'grant' } });

    // RP-initiated logout.
    // The revocation took the grant: consent is asked again, on the same browser session.
    const second = await startAuthorization(rp, { scope: 'openid' }, attempt.browser);
    const page = isCallback(second.page.url) ? second.page : await attempt.browser.submit(second.page, '/confirm', {}, isCallback);
    const idToken = (await exchange(rp, second, page.url)).id_token!;
    const logout = oidc.buildEndSessionUrl(rp, { id_token_hint: idToken, post_logout_redirect_uri: 'http://localhost:8976/bye' });
    const confirm = await attempt.browser.follow(logout.href);
    await attempt.browser.submit(confirm, '/session/end/confirm', { logout: 'yes' }, (url) => url.startsWith('http://localhost:8976/bye'));
    const signout = await waitForAudit(gh, { type: 'signout', 'actor.id': auditor.accountId });
    expect(signout).toMatchObject({ outcome: 'success', requestId: expect.stringMatching(/^[\w-]{8,}$/), userAgent: expect.any(String) });
  });

  test("the request id in an admin action's audit entry is the response's X-Request-Id and appears in the logs", async () => {
    const requestId = 'trace-0123456789abcdef';
    const res = await api(gh, 'POST', '/accounts', { token: admin.token, headers: { 'x-request-id': requestId }, body: { userId: 'traced', name: 'Traced', password: PASSWORD } });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-request-id')).toBe(requestId);
    const [entry] = await auditEntries(gh, { type: 'admin.account.created', 'target.id': res.body.account.accountId });
    expect(entry!.requestId).toBe(requestId);
    const logged = gh.logs.map((line) => JSON.parse(line) as Record<string, any>).filter((l) => l.requestId === requestId);
    expect(logged.some((l) => l.msg === 'audit' && l.audit.type === 'admin.account.created')).toBe(true);
    expect(logged.some((l) => l.msg === 'request' && l.path === '/admin/api/accounts')).toBe(true);
  });
});

describe('GET /admin/api/audit', () => {
  const base = new Date('2030-01-01T00:00:00Z');

  beforeAll(async () => {
    // Ten entries sharing one instant: the order must still be total and stable (then by id).
    const same = Array.from({ length: 10 }, (_, i) => ({ _id: new Types.ObjectId(), type: 'test.tie', outcome: 'success', actor: { kind: 'system', id: 'seed' }, target: { kind: 'thing', id: `t${i}` }, at: base }));
    const spread = Array.from({ length: 5 }, (_, i) => ({ _id: new Types.ObjectId(), type: i % 2 ? 'test.spread.odd' : 'test.spread.even', outcome: i === 4 ? 'failure' : 'success', actor: { kind: 'system', id: 'seed' }, target: { kind: 'thing', id: 'spread' }, requestId: `req-spread-${i}`, at: new Date(base.getTime() + (i + 1) * 60_000) }));
    await gh.services.audit.model.collection.insertMany([...same, ...spread]);
  });

  const query = (qs: string, person = auditor) => api(gh, 'GET', `/audit?${qs}`, { token: person.token });

  test('walks every page newest first, by time then id, with no gaps or repeats', async () => {
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { body: { items: Array<{ id: string; at: string }>; nextCursor: string | null } } = await query(`actor=seed&limit=4${cursor ? `&cursor=${cursor}` : ''}`);
      ids.push(...res.body.items.map((e) => e.id));
      cursor = res.body.nextCursor;
      pages += 1;
    } while (cursor);
    expect(pages).toBe(4);
    expect(ids).toHaveLength(15);
    expect(new Set(ids).size).toBe(15);
    const all = (await query('actor=seed&limit=200')).body.items as Array<{ id: string; at: string }>;
    expect(all.map((e) => e.id)).toEqual(ids);
    const ordered = [...all].sort((a, b) => b.at.localeCompare(a.at) || b.id.localeCompare(a.id));
    expect(all).toEqual(ordered);
  });

  test('filters by actor, target, type (exact or prefix), outcome, request id and time range', async () => {
    const types = async (qs: string) => (await query(qs)).body.items.map((e: { type: string }) => e.type);
    expect(await types('target=spread&type=test.spread.odd')).toEqual(['test.spread.odd', 'test.spread.odd']);
    expect(await types('type=test.spread.*')).toHaveLength(5);
    expect(await types('target=spread&outcome=failure')).toEqual(['test.spread.even']);
    expect(await types('requestId=req-spread-2')).toEqual(['test.spread.even']);
    const window = await query(`target=spread&since=${new Date(base.getTime() + 2 * 60_000).toISOString()}&until=${new Date(base.getTime() + 4 * 60_000).toISOString()}`);
    expect(window.body.items.map((e: { requestId: string }) => e.requestId)).toEqual(['req-spread-2', 'req-spread-1']);
    const mine = await query(`actor=${admin.accountId}&type=admin.*`);
    expect(mine.body.items.length).toBeGreaterThan(0);
    expect(mine.body.items.every((e: { actor: { id: string } }) => e.actor.id === admin.accountId)).toBe(true);
  });

  test('actor and target filters take the kind:id form the entries show, as well as the bare id', async () => {
    const at = new Date(base.getTime() - 60_000);
    await gh.services.audit.model.collection.insertMany([
      { type: 'test.party', outcome: 'success', at, actor: { kind: 'system', id: 'cli:operator' }, target: { kind: 'account', id: 'party-1' } },
      { type: 'test.party', outcome: 'success', at, actor: { kind: 'account', id: 'cli:operator' }, target: { kind: 'client', id: 'party-1' } },
      { type: 'test.party', outcome: 'failure', at, actor: { kind: 'anonymous' }, target: { kind: 'account', id: 'party-2' } },
    ]);
    const found = async (qs: string) => (await query(`type=test.party&${qs}`)).body.items.map((e: { actor: unknown; target: unknown }) => [e.actor, e.target]);
    expect(await found('actor=system:cli:operator')).toEqual([[{ kind: 'system', id: 'cli:operator' }, { kind: 'account', id: 'party-1' }]]);
    expect(await found('actor=cli:operator')).toHaveLength(2);
    expect(await found('actor=anonymous:-')).toEqual([[{ kind: 'anonymous' }, { kind: 'account', id: 'party-2' }]]);
    expect(await found('actor=client:cli:operator')).toEqual([]);
    expect(await found('target=client:party-1')).toEqual([[{ kind: 'account', id: 'cli:operator' }, { kind: 'client', id: 'party-1' }]]);
    expect(await found('target=party-1')).toHaveLength(2);
    // What the JSON shows is what the filter takes: each entry is found again by its own actor.
    for (const entry of (await query('type=test.party')).body.items as Array<{ id: string; actor: { kind: string; id?: string } }>) {
      const again = (await query(`type=test.party&actor=${encodeURIComponent(`${entry.actor.kind}:${entry.actor.id ?? '-'}`)}`)).body.items.map((e: { id: string }) => e.id);
      expect(again).toContain(entry.id);
    }
  });

  test('bad filters and cursors are a 400 naming the parameter', async () => {
    for (const [qs, field] of [
      ['since=yesterday', 'since'], ['until=2030-13-01T00:00:00Z', 'until'], ['type=$where', 'type'], ['outcome=maybe', 'outcome'],
      ['cursor=%7B%22%24gt%22%3A1%7D', 'cursor'], [`cursor=${Buffer.from('["audit","2030-01-01T00:00:00.000Z","zz"]').toString('base64url')}`, 'cursor'],
      ['actor[$ne]=x', '(input)'], ['limit=-1', 'limit'],
    ] as const) {
      const res = await query(qs);
      expect({ qs, status: res.status }).toEqual({ qs, status: 400 });
      expect(res.body.fields).toHaveProperty([field]);
    }
  });
});

describe('storage', () => {
  test('entries expire after the configured retention (a TTL index on `at`), which follows configuration changes', async () => {
    const indexes = async () => (await gh.services.audit.model.collection.indexes()).find((i) => i.name === 'at_ttl');
    expect(await indexes()).toMatchObject({ key: { at: 1 }, expireAfterSeconds: 365 * 86_400 });
    await new AuditLog(gh.services.connection, createLogger('silent'), { retentionDays: 30 }).init();
    expect(await indexes()).toMatchObject({ expireAfterSeconds: 30 * 86_400 });
    await new AuditLog(gh.services.connection, createLogger('silent'), { retentionDays: 365 }).init();
    expect(await indexes()).toMatchObject({ expireAfterSeconds: 365 * 86_400 });
  });

  test('the application cannot rewrite or delete entries', async () => {
    const model = gh.services.audit.model;
    await expect(model.updateOne({}, { $set: { outcome: 'success' } })).rejects.toThrow(/append-only/);
    await expect(model.deleteMany({})).rejects.toThrow(/append-only/);
    await expect(model.findOneAndUpdate({}, { $set: { type: 'x' } })).rejects.toThrow(/append-only/);
  });

  test('entries recorded at once go in together, each stored whole; an invalid one fails alone and is logged', async () => {
    const logged: string[] = [];
    const log = createLogger('silent');
    log.error = ((obj: { type?: string }, msg: string) => void logged.push(`${obj.type}: ${msg}`)) as typeof log.error;
    // A connection of its own with command monitoring on, to count the inserts.
    const connection = await mongoose.createConnection(gh.dbUri, { monitorCommands: true }).asPromise();
    const inserts: number[] = [];
    connection.getClient().on('commandStarted', (event) => {
      if (event.commandName === 'insert' && event.command.insert === 'audit_events') inserts.push((event.command.documents as unknown[]).length);
    });
    try {
      const audit = new AuditLog(connection, log);
      await audit.record({ type: 'test.batch', outcome: 'success', target: { kind: 'n', id: 'first' } }); // alone: nothing in flight
      await Promise.all([
        ...Array.from({ length: 20 }, (_, i) => audit.record({ type: 'test.batch', outcome: 'success', target: { kind: 'n', id: String(i) } })),
        audit.record({ type: 'test.batch.invalid', outcome: 'maybe' as never }),
      ]);
    } finally {
      await connection.close();
    }
    expect(inserts[0]).toBe(1);
    expect(inserts.slice(1).reduce((a, b) => a + b, 0)).toBe(20);
    expect(inserts.length).toBeLessThanOrEqual(3);
    const stored = await auditEntries(gh, { type: 'test.batch' });
    expect(stored.map((e) => (e as { target: { id: string } }).target.id).sort()).toEqual(['first', ...Array.from({ length: 20 }, (_, i) => String(i))].sort());
    expect(stored.every((e) => e.outcome === 'success' && e.at instanceof Date)).toBe(true);
    expect(await auditEntries(gh, { type: 'test.batch.invalid' })).toEqual([]);
    expect(logged).toEqual(['test.batch.invalid: failed to write audit event']);
  });

  test('an entry is stored exactly as the mongoose schema would store it, and refused where the schema refuses it', () => {
    const model = gh.services.audit.model;
    const at = new Date();
    const objectId = new Types.ObjectId();
    const accepted: Array<Record<string, unknown>> = [
      { type: 'x', outcome: 'success', at, actor: { kind: 'account', id: 'a1' }, details: { n: 1 } },
      { type: 'x', outcome: 'failure', at, ip: 42, requestId: null, clientId: undefined }, // cast, left out
      { type: 'x', outcome: 'failure', at, actor: { kind: 'account', id: objectId } }, // an ObjectId as its text
      { type: 'x', outcome: 'failure', at, target: { kind: 'a', id: 'b', extra: 1 } }, // unknown field dropped
      { type: 'x', outcome: 'failure', at, device: 'Chrome on Windows' }, // unknown top-level field dropped
      { type: 'x', outcome: 'failure', at, actor: {}, details: {}, changes: { f: { before: 1, after: 2 } } }, // empty objects left out
      { type: 'x', outcome: 'success', at, details: ['a', 'list'], target: { kind: 'n', id: 7 } }, // free-form details
    ];
    for (const entry of accepted) {
      const ours = storedEntry(entry as never);
      expect('doc' in ours).toBe(true);
      const theirs = new model(entry).toObject({ depopulate: true }) as Record<string, unknown>;
      expect(new model(entry).validateSync()).toBeUndefined();
      const { _id: ourId, ...ourFields } = (ours as unknown as { doc: Record<string, unknown> }).doc;
      const { _id: theirId, ...theirFields } = theirs;
      expect(ourId).toBeInstanceOf(Types.ObjectId);
      expect(theirId).toBeDefined();
      expect(ourFields).toEqual(theirFields);
    }
    const refused: Array<[Record<string, unknown>, RegExp]> = [
      [{ type: '', outcome: 'success', at }, /type/],
      [{ type: 'x', outcome: 'maybe', at }, /outcome/],
      [{ type: 'x', outcome: 'failure', at: new Date(Number.NaN) }, /at/],
      [{ type: 'x', outcome: 'failure', at, ip: { not: 'text' } }, /ip/],
      [{ type: 'x', outcome: 'failure', at, actor: { kind: 'account', id: { nested: true } } }, /actor.id/],
    ];
    // A caller's own _id is never used: every entry gets a new one.
    const own = storedEntry({ type: 'x', outcome: 'success', at, _id: 'mine' } as never);
    expect((own as unknown as { doc: { _id: unknown } }).doc._id).toBeInstanceOf(Types.ObjectId);
    for (const [entry, problem] of refused) {
      expect(storedEntry(entry as never)).toEqual({ problem: expect.stringMatching(problem) });
      expect(new model(entry).validateSync()).toBeDefined();
    }
  });

  test('values under secret-sounding keys are scrubbed whatever the caller passes', async () => {
    await gh.services.audit.record({ type: 'test.scrub', outcome: 'success', details: { password: 'hunter22hunter', nested: { client_secret: 's3cr3t-value', note: 'kept' } }, changes: { token: { before: 'a', after: 'b' } } });
    const [entry] = await auditEntries(gh, { type: 'test.scrub' });
    expect(entry).toMatchObject({ details: { password: '[redacted]', nested: { client_secret: '[redacted]', note: 'kept' } }, changes: { token: '[redacted]' } });
  });
});

test('no password, secret, token, code, invitation or registration token appears in the audit log or the logs', async () => {
  const secrets: string[] = [PASSWORD, admin.token, auditor.token];
  // A failed sign-in with a password that must not be recorded.
  const wrong = 'wrong-password-never-logged';
  const failed = await startAuthorization(console_.rp, { scope: 'openid' });
  await signIn(failed, 'root', wrong).catch(() => undefined);
  secrets.push(wrong);

  // Authorization code, tokens.
  const web = await gh.services.clients.create({ name: 'Secret keeper', redirectUris: [RP_REDIRECT] });
  secrets.push(web.clientSecret!);
  const rp = await discover(gh.url, web.clientId, web.clientSecret);
  const attempt = await startAuthorization(rp, { scope: 'openid offline_access', prompt: 'consent' });
  const callback = await signIn(attempt, 'root', PASSWORD);
  secrets.push(new URL(callback.url).searchParams.get('code')!);
  const tokens = await exchange(rp, attempt, callback.url);
  secrets.push(tokens.access_token, tokens.refresh_token!, tokens.id_token!);
  await oidc.tokenRevocation(rp, tokens.refresh_token!);

  // Admin API: client secrets, a rotated secret, an account password, an invitation, a registration token.
  const created = await api(gh, 'POST', '/clients', { token: admin.token, body: { client_name: 'API secret', grant_types: ['client_credentials'], scope: 'admin:auditor' } });
  const rotated = await api(gh, 'POST', `/clients/${created.body.client_id}/secret`, { token: admin.token });
  secrets.push(created.body.client_secret, rotated.body.client_secret);
  const machine = await createMachine(gh, 'Logged machine', 'admin:auditor');
  secrets.push(machine.clientSecret, machine.token);
  await api(gh, 'GET', '/audit?limit=1', { token: machine.token });
  const accountPassword = 'api-created-password-42';
  await api(gh, 'POST', '/accounts', { token: admin.token, body: { userId: 'pw-holder', name: 'PW', password: accountPassword } });
  await api(gh, 'POST', '/accounts', { token: admin.token, body: { userId: 'invitee', name: 'Invitee', email: 'invitee@example.com' } });
  secrets.push(accountPassword, /activate\/([\w-]{43})/.exec((await smtp.waitFor('invitee@example.com')).text)![1]!);
  const iat = await api(gh, 'POST', '/registration-tokens', { token: admin.token, body: { maxUses: 1 } });
  const registered = await fetch(`${gh.url}/reg`, { method: 'POST', headers: { authorization: `Bearer ${iat.body.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [RP_REDIRECT] }) });
  const registration = (await registered.json()) as { client_secret: string; registration_access_token: string };
  secrets.push(iat.body.token, registration.client_secret, registration.registration_access_token);
  // Give the asynchronous provider-event entries a moment to land.
  await waitForAudit(gh, { type: 'client.registered' });

  expect(secrets.every((s) => typeof s === 'string' && s.length >= 10)).toBe(true);
  const audit = JSON.stringify(await auditEntries(gh));
  const logs = gh.logs.join('\n');
  expect(logs.length).toBeGreaterThan(1000);
  for (const secret of secrets) {
    expect({ secret, inAudit: audit.includes(secret) }).toEqual({ secret, inAudit: false });
    expect({ secret, inLogs: logs.includes(secret) }).toEqual({ secret, inLogs: false });
  }
});
