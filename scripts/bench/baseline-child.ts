/**
 * The baseline target: bare oidc-provider (the version Gatehouse uses), its in-memory adapter, statically
 * configured clients, the same client metadata, keys of the same kinds (ES256 + RS256), the same token
 * formats (opaque; JWT ES256 for the bench resource server), PKCE required, first-party consent (the grant
 * is created without a page), and the smallest sign-in that still does what Gatehouse's does: a login form
 * whose password is verified with argon2id at Gatehouse's configured parameters, then a one-time-code form
 * verified as TOTP (otplib, same parameters, each time step accepted once per account, kept in memory).
 *
 * It is the floor Gatehouse is compared with: no database, no CSRF, no audit log, no templates.
 */
import { generateKeyPairSync, randomBytes, createHash, type JsonWebKey } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import argon2 from 'argon2';
import { generateSecret, verify as verifyTotp } from 'otplib';
import Provider, { type Account, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { withBenchResourceServer } from './bench-resource.js';
import type { Fixtures } from './fixtures.js';
import { announceReady, Meter, serveControl, type SeedResult } from './protocol.js';

interface BaselineSettings {
  argon2: { memoryCost: number; timeCost: number; parallelism: number };
  ttl: { accessTokenSeconds: number; clientCredentialsSeconds: number; idTokenSeconds: number; refreshTokenSeconds: number; interactionSeconds: number; sessionSeconds: number; grantSeconds: number };
}

const settings = JSON.parse(process.env.BENCH_BASELINE_SETTINGS ?? 'null') as BaselineSettings | null;
if (!settings) throw new Error('baseline-child needs BENCH_BASELINE_SETTINGS');

interface StoredAccount {
  accountId: string;
  userId: string;
  email: string;
  name: string;
  hash: string;
  totpSecret: string;
  /** The last accepted TOTP time step: only a later one is accepted next (replay protection). */
  lastTotpStep: number | null;
  updatedAt: number;
}

function signingKey(kind: 'ec' | 'rsa'): JsonWebKey & { kid: string; alg: string; use: 'sig' } {
  const jwk = (kind === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 })).privateKey.export({ format: 'jwk' });
  const kid = createHash('sha256').update(JSON.stringify(kind === 'ec' ? [jwk.crv, jwk.x, jwk.y] : [jwk.e, jwk.n])).digest('base64url');
  return { ...jwk, kid, alg: kind === 'ec' ? 'ES256' : 'RS256', use: 'sig' };
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function codePage(uid: string, error?: string): string {
  return `<!doctype html><html><head><title>Verify</title></head><body>${error ? `<p>${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/second-factor">
<input name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required>
<button type="submit">Verify</button></form></body></html>`;
}

function loginPage(uid: string, error?: string): string {
  return `<!doctype html><html><head><title>Sign in</title></head><body>${error ? `<p>${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<input name="login" type="text" autocomplete="username" required>
<input name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form></body></html>`;
}

async function readForm(req: http.IncomingMessage, limit = 32 * 1024): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > limit) throw Object.assign(new Error('form too large'), { status: 413, expose: true });
  }
  return new URLSearchParams(body);
}

function buildProvider(issuer: string, fixtures: Fixtures, accounts: Map<string, StoredAccount>): Provider {
  const { ttl } = settings!;
  const configuration: Configuration = {
    clients: [
      {
        client_id: fixtures.service.clientId,
        client_secret: fixtures.service.clientSecret,
        client_name: fixtures.service.name,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: fixtures.web.clientId,
        client_secret: fixtures.web.clientSecret,
        client_name: fixtures.web.name,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [fixtures.web.redirectUri],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [signingKey('ec'), signingKey('rsa')] } as Configuration['jwks'],
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    async findAccount(_ctx, sub): Promise<Account | undefined> {
      const account = accounts.get(sub);
      if (!account) return undefined;
      const claims = { sub: account.accountId, name: account.name, preferred_username: account.userId, updated_at: account.updatedAt, email: account.email, email_verified: true };
      return { accountId: account.accountId, claims: async () => claims };
    },
    claims: {
      acr: null,
      amr: null,
      auth_time: null,
      sid: null,
      openid: ['sub', 'acr', 'amr'],
      profile: ['name', 'preferred_username', 'updated_at'],
      email: ['email', 'email_verified'],
      phone: ['phone_number', 'phone_number_verified'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'phone'],
    responseTypes: ['code'],
    acrValues: ['urn:gatehouse:acr:pwd', 'urn:gatehouse:acr:mfa'],
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
      require_auth_time: true,
    },
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      clientCredentials: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    pkce: { required: () => true },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // Consent already granted: the web client is first-party, so its grant is made without a page.
    async loadExistingGrant(ctx: KoaContextWithOIDC) {
      const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
      if (grantId) {
        const grant = await ctx.oidc.provider.Grant.find(grantId);
        if (grant) return grant;
      }
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
      grant.addOIDCScope(ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes].join(' ') : 'openid');
      await grant.save();
      return grant;
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? ttl.accessTokenSeconds,
      AuthorizationCode: 60,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? ttl.clientCredentialsSeconds,
      IdToken: ttl.idTokenSeconds,
      RefreshToken: ttl.refreshTokenSeconds,
      Interaction: ttl.interactionSeconds,
      Session: ttl.sessionSeconds,
      Grant: ttl.grantSeconds,
    },
  };
  const provider = new Provider(issuer, withBenchResourceServer(configuration));

  const byLogin = new Map<string, StoredAccount>();
  for (const account of accounts.values()) {
    byLogin.set(account.userId.toLowerCase(), account);
    byLogin.set(account.email.toLowerCase(), account);
  }
  const dummyHash = argon2.hash(randomBytes(16).toString('hex'), { type: argon2.argon2id, ...settings!.argon2 });

  // Sign-ins that passed the password and wait for their code, by interaction uid (in memory, like the rest).
  const pendingCode = new Map<string, { accountId: string; passwordAt: number }>();

  // The sign-in: GET shows the form, POST verifies the password (argon2id), then the code (TOTP), and
  // finishes the interaction.
  provider.use(async (ctx, next) => {
    const match = /^\/interaction\/([\w-]+)(\/login|\/second-factor)?$/.exec(ctx.path);
    if (!match) return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.prompt.name !== 'login') ctx.throw(400, `unexpected prompt ${details.prompt.name}`);
    ctx.type = 'html';
    if (ctx.method === 'GET' && !match[2]) {
      ctx.body = pendingCode.has(details.uid) ? codePage(details.uid) : loginPage(details.uid);
      return;
    }
    if (ctx.method !== 'POST' || !match[2]) ctx.throw(405);
    const form = await readForm(ctx.req);
    if (match[2] === '/login') {
      const account = byLogin.get((form.get('login') ?? '').trim().toLowerCase());
      const ok = await argon2.verify(account?.hash ?? (await dummyHash), form.get('password') ?? '').catch(() => false);
      if (!account || !ok) {
        ctx.status = 401;
        ctx.body = loginPage(details.uid, 'The User ID, email or password you entered is incorrect.');
        return;
      }
      pendingCode.set(details.uid, { accountId: account.accountId, passwordAt: Math.floor(Date.now() / 1000) });
      setTimeout(() => pendingCode.delete(details.uid), settings!.ttl.interactionSeconds * 1000).unref();
      ctx.body = codePage(details.uid);
      return;
    }
    const pending = pendingCode.get(details.uid);
    const account = pending ? accounts.get(pending.accountId) : undefined;
    if (!pending || !account) {
      ctx.status = 400;
      ctx.body = 'no sign-in waiting for a code';
      return;
    }
    const token = (form.get('code') ?? '').replace(/\s/g, '');
    const result = /^\d{6}$/.test(token)
      ? await verifyTotp({ secret: account.totpSecret, token, digits: 6, period: 30, epoch: Math.floor(Date.now() / 1000), epochTolerance: 30 })
      : { valid: false as const };
    const step = result.valid && 'timeStep' in result ? result.timeStep : null;
    if (step === null || (account.lastTotpStep !== null && step <= account.lastTotpStep)) {
      ctx.status = 401;
      ctx.body = codePage(details.uid, step === null ? 'That code is not right.' : 'That code was already used.');
      return;
    }
    account.lastTotpStep = step;
    pendingCode.delete(details.uid);
    const redirectTo = await provider.interactionResult(ctx.req, ctx.res, {
      login: { accountId: account.accountId, amr: ['pwd', 'otp', 'mfa'], acr: 'urn:gatehouse:acr:mfa', remember: true, ts: pending.passwordAt },
    });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  });
  return provider;
}

const meter = new Meter();
const server = http.createServer((_req, res) => {
  res.statusCode = 503;
  res.end('not seeded yet');
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://localhost:${(server.address() as AddressInfo).port}`;

serveControl(meter, {
  async seed(fixtures): Promise<SeedResult> {
    const accounts = new Map<string, StoredAccount>();
    const totpSecrets: Record<string, string> = {};
    // One hash for every account (same password): the baseline's seeding stays quick with many accounts.
    const hash = await argon2.hash(fixtures.password, { type: argon2.argon2id, ...settings.argon2 });
    for (const account of fixtures.accounts) {
      const accountId = randomBytes(16).toString('base64url');
      const totpSecret = generateSecret();
      totpSecrets[account.userId] = totpSecret;
      // As on Gatehouse, enrolment used the previous time step: the current one is free.
      accounts.set(accountId, { ...account, accountId, hash, totpSecret, lastTotpStep: Math.floor(Date.now() / 30_000) - 1, updatedAt: Math.floor(Date.now() / 1000) });
    }
    const provider = buildProvider(issuer, fixtures, accounts);
    server.removeAllListeners('request');
    server.on('request', provider.callback());
    return { totpSecrets };
  },
  stop: async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  },
});

announceReady(issuer, { oidcProvider: 'bare, in-memory adapter', uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (Node default)' });
