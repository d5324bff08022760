/**
 * Account administration through the API: create (with a password, or with an emailed invitation
 * through a real SMTP server), search and paginate, update, status changes, second-factor reset,
 * revoking sessions, validation errors, and the audit entry each change leaves.
 */
import * as oidc from 'openid-client';
import { TestSmtpServer } from '../support/smtp.js';
import { api, auditEntries, createAdminConsole, createPerson, PASSWORD, signInForToken, startAdminGatehouse, type AdminConsole, type AdminGatehouse, type Person } from './support.js';

let smtp: TestSmtpServer;
let gh: AdminGatehouse;
let console_: AdminConsole;
let admin: Person;
let helpdesk: Person;

beforeAll(async () => {
  smtp = await new TestSmtpServer().start();
  gh = await startAdminGatehouse('admin_accounts', { env: { SMTP_URL: smtp.url } });
  console_ = await createAdminConsole(gh);
  [admin, helpdesk] = await Promise.all([createPerson(gh, console_.rp, 'root', ['admin']), createPerson(gh, console_.rp, 'desk', ['helpdesk'])]);
});

afterAll(async () => {
  await gh?.close();
  await smtp?.stop();
});

const as = (person: Person) => ({ token: person.token });

describe('create', () => {
  test('with a password: 201, the account as the API shows it, and an audit entry without the password', async () => {
    const res = await api(gh, 'POST', '/accounts', {
      ...as(admin),
      body: { userId: 'jdoe', email: 'Jane.Doe@Example.com', name: 'Jane Doe', phone: '+14155550123', market: 'US', roles: ['auditor'], password: 'a long enough password' },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`/admin/api/accounts/${res.body.account.accountId}`);
    expect(res.body.account).toMatchObject({ userId: 'jdoe', email: 'Jane.Doe@Example.com', emailVerified: false, roles: ['auditor'], status: 'active', hasPassword: true, market: 'US' });
    expect(res.body.invitation).toBeUndefined();
    const [entry] = await auditEntries(gh, { type: 'admin.account.created', 'target.id': res.body.account.accountId });
    expect(entry).toMatchObject({
      outcome: 'success',
      actor: { kind: 'account', id: admin.accountId },
      clientId: console_.clientId,
      requestId: res.headers.get('x-request-id'),
      changes: { userId: { before: null, after: 'jdoe' }, roles: { before: null, after: ['auditor'] } },
      details: { withPassword: true },
    });
    expect(JSON.stringify(entry)).not.toContain('a long enough password');
  });

  test('without a password: an invitation with a single-use, expiring link is mailed; only its hash is stored', async () => {
    const res = await api(gh, 'POST', '/accounts', { ...as(admin), body: { userId: 'newbie', email: 'newbie@example.com', name: 'New Bie' } });
    expect(res.status).toBe(201);
    expect(res.body.account.hasPassword).toBe(false);
    expect(res.body.invitation).toEqual({ sent: true, expiresAt: expect.any(String) });
    const hours = (Date.parse(res.body.invitation.expiresAt) - Date.now()) / 3_600_000;
    expect(hours).toBeGreaterThan(71.9);
    expect(hours).toBeLessThanOrEqual(72);

    const mail = await smtp.waitFor('newbie@example.com');
    expect(mail.subject).toBe('You have been invited to Gatehouse');
    const link = new RegExp(`${gh.url}/activate/([A-Za-z0-9_-]{43})`).exec(mail.text);
    expect(link).not.toBeNull();
    expect(mail.html).toContain(link![0]);
    const token = link![1]!;

    const stored = await gh.services.connection.collection('account_invitations').find({ accountId: res.body.account.accountId }).toArray();
    expect(stored).toHaveLength(1);
    expect(JSON.stringify(stored)).not.toContain(token);
    const indexes = await gh.services.connection.collection('account_invitations').indexes();
    expect(indexes.find((i) => i.name === 'expiresAt_ttl')).toMatchObject({ expireAfterSeconds: 0 });

    const shown = await api(gh, 'GET', `/accounts/${res.body.account.accountId}`, as(admin));
    expect(shown.body.pendingInvitation).toEqual({ expiresAt: res.body.invitation.expiresAt });
    const [entry] = await auditEntries(gh, { type: 'admin.account.created', 'target.id': res.body.account.accountId });
    expect(JSON.stringify(entry)).not.toContain(token);

    // What the activation page (account recovery) will call: it works once.
    const { invitations } = gh.services.admin;
    expect(await invitations.redeem(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`)).toBeNull();
    expect(await invitations.redeem(token)).toBe(res.body.account.accountId);
    expect(await invitations.redeem(token)).toBeNull();
  });

  test('a new invitation replaces the earlier one; an expired one does not work', async () => {
    const created = await api(gh, 'POST', '/accounts', { ...as(admin), body: { userId: 'twice', email: 'twice@example.com', name: 'Twice' } });
    const first = /activate\/([\w-]{43})/.exec((await smtp.waitFor('twice@example.com')).text)![1]!;
    const again = await api(gh, 'POST', `/accounts/${created.body.account.accountId}/invitation`, as(admin));
    expect(again.status).toBe(200);
    expect(again.body.invitation.sent).toBe(true);
    const second = /activate\/([\w-]{43})/.exec((await smtp.waitFor('twice@example.com', (m) => !m.text.includes(first))).text)![1]!;
    const { invitations } = gh.services.admin;
    expect(await invitations.redeem(first)).toBeNull();
    await gh.services.connection.collection('account_invitations').updateMany({ accountId: created.body.account.accountId }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
    expect(await invitations.redeem(second)).toBeNull();
    const withPassword = await api(gh, 'POST', `/accounts/${admin.accountId}/invitation`, as(admin));
    expect(withPassword.status).toBe(409);
  });

  test('invalid input: 400 with a message per field, nothing created', async () => {
    const before = await gh.services.accounts.model.countDocuments();
    const cases: Array<[unknown, string]> = [
      [{ userId: 'x', name: 'X', password: PASSWORD }, 'userId'],
      [{ userId: 'bad@id', name: 'X', password: PASSWORD }, 'userId'],
      [{ userId: 'okay', name: '', password: PASSWORD }, 'name'],
      [{ userId: 'okay', name: 'X', email: 'not-an-email', password: PASSWORD }, 'email'],
      [{ userId: 'okay', name: 'X', phone: '0123', password: PASSWORD }, 'phone'],
      [{ userId: 'okay', name: 'X', roles: ['Admin!'], password: PASSWORD }, 'roles.0'],
      [{ userId: 'okay', name: 'X', roles: ['auditor', 'root'], password: PASSWORD }, 'roles.1'],
      [{ userId: 'okay', name: 'X', market: 'USA', password: PASSWORD }, 'market'],
      [{ userId: 'okay', name: 'X', password: 'short' }, 'password'],
      [{ userId: 'okay', name: 'X' }, 'email'],
      [{ userId: 'okay', name: 'X', password: PASSWORD, isAdmin: true }, '(input)'],
      [{ userId: 42, name: 'X' }, 'userId'],
    ];
    for (const [body, field] of cases) {
      const res = await api(gh, 'POST', '/accounts', { ...as(admin), body });
      expect({ body, status: res.status, error: res.body.error }).toEqual({ body, status: 400, error: 'invalid_request' });
      expect(Object.keys(res.body.fields)).toContain(field);
    }
    const duplicate = await api(gh, 'POST', '/accounts', { ...as(admin), body: { userId: 'JDOE', name: 'Dup', password: PASSWORD } });
    expect(duplicate.status).toBe(409);
    expect(await gh.services.accounts.model.countDocuments()).toBe(before);
  });
});

describe('market and roles', () => {
  test('an unknown market or role is a 400 naming the field and the accepted values; nothing is created', async () => {
    const before = await gh.services.accounts.model.countDocuments();
    const res = await api(gh, 'POST', '/accounts', { ...as(admin), body: { userId: 'zed', name: 'Zed', email: 'zed@example.com', market: 'ZZ', roles: ['root'] } });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('market: "ZZ" is not a market') });
    expect(res.body.fields).toEqual({
      market: '"ZZ" is not a market of the sign-in policy (config/policies.json): use one of CH, DE, LAB, US, default',
      'roles.0': '"root" is not a known role: use admin, helpdesk, auditor',
    });
    expect(await gh.services.accounts.model.countDocuments()).toBe(before);
    expect(smtp.received.filter((m) => m.to.includes('zed@example.com'))).toHaveLength(0);
  });

  test('a market in any letter case is stored as the policy file names it; "default" names the default policy', async () => {
    const lower = await api(gh, 'POST', '/accounts', { ...as(admin), body: { userId: 'lower-us', name: 'Lower', market: 'us', password: PASSWORD } });
    expect(lower.status).toBe(201);
    expect(lower.body.account.market).toBe('US');
    const explicit = await api(gh, 'POST', '/accounts', { ...as(admin), body: { userId: 'explicit-default', name: 'Explicit', market: 'Default', password: PASSWORD } });
    expect(explicit.body.account.market).toBe('default');
    const moved = await api(gh, 'PATCH', `/accounts/${lower.body.account.accountId}`, { ...as(admin), body: { market: 'ch' } });
    expect(moved.body.market).toBe('CH');
  });

  test('update: an unknown market or role is a 400 and changes nothing', async () => {
    const account = await gh.services.accounts.create({ userId: 'stays', name: 'Stays', market: 'DE', password: PASSWORD });
    const market = await api(gh, 'PATCH', `/accounts/${account.accountId}`, { ...as(admin), body: { name: 'Renamed', market: 'USA' } });
    expect(market.status).toBe(400);
    expect(market.body.fields).toEqual({ market: expect.stringMatching(/^"USA" is not a market .*use one of CH, DE, LAB, US, default$/) });
    const role = await api(gh, 'PATCH', `/accounts/${account.accountId}`, { ...as(admin), body: { roles: ['helpdesk', 'superuser'] } });
    expect(role.status).toBe(400);
    expect(role.body.fields).toEqual({ 'roles.1': '"superuser" is not a known role: use admin, helpdesk, auditor' });
    expect(await gh.services.accounts.findByAccountId(account.accountId)).toMatchObject({ name: 'Stays', market: 'DE', roles: [] });
  });

  test('an account already in an unknown market or with an unknown role keeps working: only new values are checked', async () => {
    const account = await gh.services.accounts.create({ userId: 'legacy', name: 'Legacy', password: PASSWORD });
    await gh.services.accounts.model.collection.updateOne({ accountId: account.accountId }, { $set: { market: 'ZZ', roles: ['steward'] } });
    const shown = await api(gh, 'GET', `/accounts/${account.accountId}`, as(admin));
    expect(shown.body).toMatchObject({ market: 'ZZ', roles: ['steward'] });
    // Sent back as read (as a form that sends every field does), plus a known role: accepted.
    const same = await api(gh, 'PATCH', `/accounts/${account.accountId}`, { ...as(admin), body: { name: 'Legacy Person', market: 'zz', roles: ['steward', 'auditor'] } });
    expect(same.status).toBe(200);
    expect(same.body).toMatchObject({ name: 'Legacy Person', market: 'ZZ', roles: ['steward', 'auditor'] });
    const other = await api(gh, 'PATCH', `/accounts/${account.accountId}`, { ...as(admin), body: { market: 'YY', roles: ['steward', 'viewer'] } });
    expect(other.status).toBe(400);
    expect(Object.keys(other.body.fields)).toEqual(['market', 'roles.1']);
  });
});

describe('search and pagination', () => {
  beforeAll(async () => {
    for (let i = 0; i < 7; i++) {
      const account = await gh.services.accounts.create({ userId: `page-${i}`, name: `Page ${i}`, email: `page${i}@paging.example` });
      // A role from before roles were checked: still found by the role filter.
      if (i % 2) await gh.services.accounts.model.collection.updateOne({ accountId: account.accountId }, { $set: { roles: ['reviewer'] } });
    }
  });

  test('pages follow the User ID order with an opaque cursor, without gaps or repeats', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { body: { items: Array<{ userId: string }>; nextCursor: string | null } } = await api(gh, 'GET', `/accounts?q=paging.example&limit=3${cursor ? `&cursor=${cursor}` : ''}`, as(helpdesk));
      seen.push(...res.body.items.map((a) => a.userId));
      cursor = res.body.nextCursor;
      pages += 1;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(['page-0', 'page-1', 'page-2', 'page-3', 'page-4', 'page-5', 'page-6']);
  });

  test('search by part of the User ID or email in any case, and filter by role and status', async () => {
    const byEmail = await api(gh, 'GET', '/accounts?q=PAGE3@', as(helpdesk));
    expect(byEmail.body.items.map((a: { userId: string }) => a.userId)).toEqual(['page-3']);
    const byRole = await api(gh, 'GET', '/accounts?role=reviewer', as(helpdesk));
    expect(byRole.body.items.map((a: { userId: string }) => a.userId)).toEqual(['page-1', 'page-3', 'page-5']);
    const regexLike = await api(gh, 'GET', `/accounts?q=${encodeURIComponent('.*')}`, as(helpdesk));
    expect(regexLike.body.items).toEqual([]);
  });

  test('bad paging input is a 400 naming the parameter', async () => {
    for (const [query, field] of [
      ['limit=0', 'limit'], ['limit=500', 'limit'], ['limit=ten', 'limit'], ['cursor=not-a-cursor!', 'cursor'],
      [`cursor=${Buffer.from('["clients","x"]').toString('base64url')}`, 'cursor'], ['status=gone', 'status'], ['sort=name', '(input)'], ['q=a&q=b', 'q'],
    ] as const) {
      const res = await api(gh, 'GET', `/accounts?${query}`, as(helpdesk));
      expect({ query, status: res.status }).toEqual({ query, status: 400 });
      expect(Object.keys(res.body.fields)).toContain(field);
    }
  });
});

describe('update', () => {
  test('changes only the given fields, unverifies a new email, and records before/after', async () => {
    const account = await gh.services.accounts.create({ userId: 'mover', name: 'Mover', email: 'mover@example.com', emailVerified: true, password: PASSWORD });
    const res = await api(gh, 'PATCH', `/accounts/${account.accountId}`, { ...as(admin), body: { email: 'moved@example.com', market: 'DE', roles: ['helpdesk', 'helpdesk'] } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ email: 'moved@example.com', emailVerified: false, market: 'DE', roles: ['helpdesk'], name: 'Mover' });
    expect(await gh.services.accounts.findByLogin('MOVED@example.com')).not.toBeNull();
    const [entry] = await auditEntries(gh, { type: 'admin.account.updated', 'target.id': account.accountId });
    expect(entry!.changes).toEqual({
      email: { before: 'mover@example.com', after: 'moved@example.com' },
      emailVerified: { before: true, after: false },
      market: { before: 'default', after: 'DE' },
      roles: { before: [], after: ['helpdesk'] },
    });

    const removeEmail = await api(gh, 'PATCH', `/accounts/${account.accountId}`, { ...as(admin), body: { email: null } });
    expect(removeEmail.body.email).toBeNull();
    expect(await gh.services.accounts.findByLogin('moved@example.com')).toBeNull();
  });

  test('a taken email is a 409; an empty or unknown change is a 400; an unknown account a 404', async () => {
    const account = await gh.services.accounts.create({ userId: 'clash', name: 'Clash', password: PASSWORD });
    expect((await api(gh, 'PATCH', `/accounts/${account.accountId}`, { ...as(admin), body: { email: 'ROOT@example.com' } })).status).toBe(409);
    expect((await api(gh, 'PATCH', `/accounts/${account.accountId}`, { ...as(admin), body: {} })).status).toBe(400);
    const unknownField = await api(gh, 'PATCH', `/accounts/${account.accountId}`, { ...as(admin), body: { status: 'active' } });
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.fields).toHaveProperty('(input)');
    expect((await api(gh, 'PATCH', '/accounts/no-such-account', { ...as(admin), body: { name: 'X' } })).status).toBe(404);
    expect((await api(gh, 'GET', '/accounts/%E2%9C%93', as(admin))).status).toBe(404);
  });
});

describe('status, second factor and sessions', () => {
  test('disable ends sessions and revokes tokens; enable and unlock follow the allowed transitions', async () => {
    const person = await createPerson(gh, console_.rp, 'worker', []);
    const tokenBefore = await oidc.tokenIntrospection(console_.rp, person.token);
    expect(tokenBefore.active).toBe(true);

    const disabled = await api(gh, 'POST', `/accounts/${person.accountId}/disable`, as(helpdesk));
    expect(disabled.status).toBe(200);
    expect(disabled.body.account.status).toBe('disabled');
    expect(disabled.body.revoked).toMatchObject({ sessions: 1, grants: 1 });
    expect(disabled.body.revoked.tokens).toBeGreaterThanOrEqual(1);
    expect((await oidc.tokenIntrospection(console_.rp, person.token)).active).toBe(false);
    await expect(signInForToken(console_.rp, 'worker')).rejects.toThrow();

    expect((await api(gh, 'POST', `/accounts/${person.accountId}/disable`, as(helpdesk))).status).toBe(409);
    expect((await api(gh, 'POST', `/accounts/${person.accountId}/unlock`, as(helpdesk))).status).toBe(409);
    const enabled = await api(gh, 'POST', `/accounts/${person.accountId}/enable`, as(helpdesk));
    expect(enabled.body.account.status).toBe('active');
    expect((await signInForToken(console_.rp, 'worker')).accessToken).toEqual(expect.any(String));

    const [entry] = await auditEntries(gh, { type: 'admin.account.disabled', 'target.id': person.accountId });
    expect(entry).toMatchObject({ actor: { kind: 'account', id: helpdesk.accountId }, changes: { status: { before: 'active', after: 'disabled' } } });
  });

  test('unlock turns a locked account active and clears its lockout, atomically', async () => {
    const account = await gh.services.accounts.create({ userId: 'locked-out', name: 'Locked', password: PASSWORD });
    const until = new Date(Date.now() + 3_600_000);
    await gh.services.accounts.model.collection.updateOne({ accountId: account.accountId }, { $set: { status: 'locked', lockedUntil: until } });
    const shown = await api(gh, 'GET', `/accounts/${account.accountId}`, as(helpdesk));
    expect(shown.body).toMatchObject({ status: 'locked', lockedUntil: until.toISOString() });
    const res = await api(gh, 'POST', `/accounts/${account.accountId}/unlock`, as(helpdesk));
    expect(res.body.account).toMatchObject({ status: 'active', lockedUntil: null });
    const raw = await gh.services.accounts.model.collection.findOne({ accountId: account.accountId });
    expect(raw).not.toHaveProperty('lockedUntil');
    const [entry] = await auditEntries(gh, { type: 'admin.account.unlocked', 'target.id': account.accountId });
    expect(entry!.changes).toMatchObject({ status: { before: 'locked', after: 'active' } });
  });

  test('unlock lifts the sign-in rate limit of an account that is neither locked nor paused, audited; 409 once nothing is in force', async () => {
    const person = await createPerson(gh, console_.rp, 'busy-signer', []);
    const limits = gh.services.rateLimits;
    // Use up the identifier's allowance from another address, so only the identifier is over its limit.
    for (let i = 0; i < limits.config.signin.identifier.points; i++) await limits.consume('signin', { ip: '203.0.113.77', identifier: 'busy-signer@example.com' });
    await expect(signInForToken(console_.rp, 'busy-signer@example.com')).rejects.toThrow();
    expect(await limits.identifierLimited('signin', 'busy-signer@example.com')).toBe(true);

    const res = await api(gh, 'POST', `/accounts/${person.accountId}/unlock`, as(helpdesk));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ account: expect.objectContaining({ status: 'active' }), cleared: { lockout: false, secondFactorPause: false, signInThrottle: true } });
    expect(await limits.identifierLimited('signin', 'busy-signer@example.com')).toBe(false);
    expect((await signInForToken(console_.rp, 'busy-signer@example.com')).accessToken).toEqual(expect.any(String));

    const [unlocked] = await auditEntries(gh, { type: 'admin.account.unlocked', 'target.id': person.accountId });
    expect(unlocked).toMatchObject({ actor: { kind: 'account', id: helpdesk.accountId }, details: { cleared: { signInThrottle: true } } });
    const [reset] = await auditEntries(gh, { type: 'ratelimit.reset' });
    expect(reset).toMatchObject({ actor: { kind: 'account', id: helpdesk.accountId }, details: { bucket: 'signin', limitedBy: 'identifier' } });

    // A few sign-ins short of the limit are not a throttle in force: nothing to unlock, and nothing changed.
    await limits.consume('signin', { ip: '203.0.113.77', identifier: 'busy-signer' });
    const nothing = await api(gh, 'POST', `/accounts/${person.accountId}/unlock`, as(helpdesk));
    expect(nothing.status).toBe(409);
    expect(nothing.body.error_description).toBe('the account is not locked, its second-factor verification is not paused, and its sign-in is not rate-limited');
    expect(await gh.services.connection.collection('rate_limits').countDocuments({ key: `signin:identifier:${limits.identifierKeyFor('busy-signer')}` })).toBe(1);
  });

  test('resetting the second factor removes the credentials and the enrolment', async () => {
    const account = await gh.services.accounts.create({ userId: 'two-factor', name: 'Two Factor', password: PASSWORD });
    const credentials = gh.services.connection.collection('credentials');
    await credentials.insertMany([
      { _id: `totp:${account.accountId}` as never, accountId: account.accountId, type: 'totp' },
      { _id: `recovery-codes:${account.accountId}` as never, accountId: account.accountId, type: 'recovery-codes' },
      { _id: 'totp:someone-else' as never, accountId: 'someone-else', type: 'totp' },
    ]);
    await gh.services.accounts.model.collection.updateOne({ accountId: account.accountId }, { $set: { mfa: { enrolledAt: new Date() } } });
    const res = await api(gh, 'POST', `/accounts/${account.accountId}/reset-second-factor`, as(helpdesk));
    expect(res.body).toEqual({ credentialsRemoved: 2, hadSecondFactor: true });
    expect(await credentials.countDocuments({ accountId: account.accountId })).toBe(0);
    expect(await credentials.countDocuments({ accountId: 'someone-else' })).toBe(1);
    expect(await gh.services.accounts.model.collection.findOne({ accountId: account.accountId })).not.toHaveProperty('mfa');
    const [entry] = await auditEntries(gh, { type: 'admin.account.second_factor_reset', 'target.id': account.accountId });
    expect(entry).toMatchObject({ details: { credentialsRemoved: 2 }, changes: { mfa: { before: 'enrolled', after: null } } });
  });

  test('revoke-sessions ends every session and grant of that account only', async () => {
    const [one, other] = await Promise.all([createPerson(gh, console_.rp, 'sessions-one', []), createPerson(gh, console_.rp, 'sessions-two', [])]);
    const second = await signInForToken(console_.rp, 'sessions-one');
    const res = await api(gh, 'POST', `/accounts/${one.accountId}/revoke-sessions`, as(admin));
    expect(res.body.revoked).toMatchObject({ sessions: 2, grants: 2 });
    expect((await oidc.tokenIntrospection(console_.rp, one.token)).active).toBe(false);
    expect((await oidc.tokenIntrospection(console_.rp, second.accessToken)).active).toBe(false);
    expect((await oidc.tokenIntrospection(console_.rp, other.token)).active).toBe(true);
    const [entry] = await auditEntries(gh, { type: 'admin.account.sessions_revoked', 'target.id': one.accountId });
    expect(entry!.details).toMatchObject({ sessions: 2, grants: 2 });
  });

  test('password reset of an invited account that has no password yet is a 409 pointing to its invitation; nothing is mailed', async () => {
    const created = await api(gh, 'POST', '/accounts', { ...as(admin), body: { userId: 'not-yet', name: 'Not Yet', email: 'not-yet@example.com' } });
    expect(created.body).toMatchObject({ account: { hasPassword: false }, invitation: { sent: true } });
    await smtp.waitFor('not-yet@example.com');
    const mailsBefore = smtp.received.length;
    const res = await api(gh, 'POST', `/accounts/${created.body.account.accountId}/password-reset`, as(helpdesk));
    expect(res.status).toBe(409);
    expect(res.body.error_description).toMatch(/^the account has no password yet \(it was invited and has not activated\): resend its invitation instead \(POST \/accounts\/\{id\}\/invitation/);
    expect(smtp.received.slice(mailsBefore).filter((m) => m.to.includes('not-yet@example.com'))).toEqual([]);
    expect(await auditEntries(gh, { type: 'admin.account.password_reset_requested', 'target.id': created.body.account.accountId })).toEqual([]);
    // The way it points to works: the invitation is sent again.
    expect((await api(gh, 'POST', `/accounts/${created.body.account.accountId}/invitation`, as(admin))).body).toMatchObject({ invitation: { sent: true } });
  });

  test('password reset mails the person a request to use self-service recovery, and is audited', async () => {
    const sentBefore = smtp.received.length;
    const res = await api(gh, 'POST', `/accounts/${helpdesk.accountId}/password-reset`, as(admin));
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ sent: true });
    const mail = await smtp.waitFor('desk@example.com', (m) => m.subject === 'Please reset your password');
    // Exactly one such mail (security alerts from earlier tests may arrive in the background meanwhile).
    expect(smtp.received.slice(sentBefore).filter((m) => m.subject === 'Please reset your password')).toHaveLength(1);
    expect(mail.text).toContain(`${gh.url}/recover`);
    expect(mail.text).toContain('User ID: desk');
    const [entry] = await auditEntries(gh, { type: 'admin.account.password_reset_requested', 'target.id': helpdesk.accountId });
    expect(entry).toMatchObject({ outcome: 'success', actor: { kind: 'account', id: admin.accountId } });
  });
});
