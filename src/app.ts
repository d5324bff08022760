/**
 * Assembles Gatehouse: the parent Koa app with our routes first and oidc-provider mounted last.
 */
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa from 'koa';
import compose from 'koa-compose';
import mount from 'koa-mount';
import views from 'koa-views';
import type { Connection } from 'mongoose';
import type Provider from 'oidc-provider';
import { AccountService } from './accounts/accounts.js';
import { KnownBrowsers } from './accounts/known-browsers.js';
import { Lockout } from './accounts/lockout.js';
import { adminApi } from './admin/router.js';
import { createAdminServices, type AdminServices } from './admin/services.js';
import { AuditLog } from './audit/audit.js';
import { auditProviderEvents } from './audit/provider-events.js';
import { projectRoot, type Config } from './config.js';
import type { SecretBox } from './crypto/secret-box.js';
import { demoRoutes } from './demo/demo-rp.js';
import { accountRoutes } from './selfservice/routes.js';
import { createFactors, type Factors } from './factors/index.js';
import { resolveRelyingPartySettings } from './factors/webauthn/relying-party.js';
import { PasswordHasher } from './factors/password/password.js';
import { systemClock, type Clock } from './factors/types.js';
import { errorBoundary, requestContext, requireDatabase, requireHttps, sameOriginPosts, securityHeaders } from './http/middleware.js';
import { VIEWS_DIR } from './http/render.js';
import { RateLimits } from './http/rate-limit.js';
import { CsrfTokens } from './interactions/csrf.js';
import { SignInFlow } from './interactions/flow.js';
import { interactionRoutes } from './interactions/routes.js';
import type { SecondFactors } from './interactions/second-factors.js';
import { createSecondFactors } from './interactions/second-factors-impl.js';
import { SignInStates } from './interactions/state.js';
import { GuessLimit } from './interactions/guess-limit.js';
import type { Logger } from './logger.js';
import { DevMailbox, Mailer } from './notify/mailer.js';
import { SecurityAlerts } from './notify/security-alerts.js';
import { DeviceCookies } from './interactions/device-cookies.js';
import { ConsoleSmsGateway, createSmsGateway, type SmsGateway } from './notify/sms.js';
import { ensureAdapterIndexes } from './oidc/adapter.js';
import { ClientRegistry } from './oidc/clients.js';
import { ensureConsentRecordIndexes } from './oidc/consent-records.js';
import { loadProviderKeys, type ProviderKeys } from './oidc/keys.js';
import { buildProvider } from './oidc/provider.js';
import { revokeOnSelfDeletion } from './oidc/registration.js';
import { PolicyStore, policiesFile, type MarketCatalogue, type PolicySource } from './policy/policy-store.js';
import { appReturns } from './recovery/app-return.js';
import { Recovery } from './recovery/recovery.js';
import { RecoveryFlows } from './recovery/recovery-flows.js';
import { recoveryRoutes } from './recovery/routes.js';
import { FormCsrf } from './http/form-csrf.js';
import { readBody } from './http/read-body.js';

export interface Services {
  config: Config;
  log: Logger;
  connection: Connection;
  secretBox: SecretBox;
  provider: Provider;
  accounts: AccountService;
  clients: ClientRegistry;
  audit: AuditLog;
  hasher: PasswordHasher;
  keys: ProviderKeys;
  mailer: Mailer;
  admin: AdminServices;
  clock: Clock;
  policies: PolicySource & MarketCatalogue;
  sms: SmsGateway;
  factors: Factors;
  secondFactors: SecondFactors;
  signInStates: SignInStates;
  rateLimits: RateLimits;
  lockout: Lockout;
  /** Wrong second-factor (one-time-code) answers per account, shared by sign-in, recovery and admin unlock. */
  guesses: GuessLimit;
  knownBrowsers: KnownBrowsers;
  alerts: SecurityAlerts;
}

export interface ServiceOptions {
  /** Tests move time with their own clock; everything time-dependent reads it. */
  clock?: Clock;
}

/** Everything but HTTP: shared by the server and the CLI. */
export async function createServices(config: Config, log: Logger, connection: Connection, secretBox: SecretBox, options: ServiceOptions = {}): Promise<Services> {
  const clock = options.clock ?? systemClock;
  const hasher = new PasswordHasher(config.password.argon2, {
    minLength: config.password.minLength,
    maxLength: config.password.maxLength,
    composition: config.password.composition,
  });
  const policies = PolicyStore.open(policiesFile(), { log, clock });
  const accounts = new AccountService(connection, hasher, policies);
  const audit = new AuditLog(connection, log, { retentionDays: config.audit.retentionDays });
  await Promise.all([ensureAdapterIndexes(connection), ensureConsentRecordIndexes(connection), accounts.model.init(), audit.init()]);
  const keys = await loadProviderKeys(connection, secretBox);
  // Identifiers are counted under a keyed hash: a plain hash of a login could be confirmed by guessing it.
  const rateLimits = new RateLimits(connection, config.rateLimits, { audit, identifierKey: createHmac('sha256', keys.cookieKeys[0]!).update('gatehouse:rate-limits').digest() });
  await rateLimits.init();
  const provider = buildProvider({ config, connection, secretBox, keys, accounts, log });
  auditProviderEvents(provider, audit);
  revokeOnSelfDeletion(provider, connection, log);
  const clients = new ClientRegistry(provider, connection, secretBox);
  const mailer = new Mailer(config.mail, log, config.env === 'production' ? undefined : new DevMailbox());
  const sms = createSmsGateway(config.sms, config.env, log);
  const relyingParty = resolveRelyingPartySettings(config.webauthn, config.issuer);
  if (!relyingParty.ok) log.warn({ problems: relyingParty.problems }, 'passkeys (WebAuthn) are unavailable with this issuer');
  const factors = await createFactors({ connection, secretBox, mailer, sms, hasher, policies, clock, log, onEmailProven: (accountId, email) => accounts.markEmailProven(accountId, email), ...(relyingParty.ok ? { relyingParty: relyingParty.relyingParty } : {}) });
  const secondFactors = createSecondFactors(factors, policies, accounts);
  const signInStates = new SignInStates(connection);
  // Unknown identifiers are counted under a keyed hash, so the lockout collection never holds what was typed.
  const lockout = new Lockout(connection, clock, createHmac('sha256', keys.cookieKeys[0]!).update('gatehouse:lockout').digest());
  const guesses = new GuessLimit(connection, clock);
  const knownBrowsers = new KnownBrowsers(connection, clock);
  const alerts = new SecurityAlerts(mailer, log, { issuer: config.issuer });
  await Promise.all([signInStates.model.init(), lockout.model.init(), knownBrowsers.ensureIndexes()]);
  const admin = await createAdminServices({ config, log, connection, provider, accounts, clients, audit, mailer, lockout, guesses, rateLimits, trustedDevices: factors.trustedDevice, webauthn: factors.webauthn, alerts });
  return { config, log, connection, secretBox, provider, accounts, clients, audit, hasher, keys, mailer, admin, clock, policies, sms, factors, secondFactors, signInStates, lockout, guesses, knownBrowsers, alerts, rateLimits };
}

/** A real round trip, bounded in time: the connection state alone lags behind an outage. */
async function databaseAnswers(connection: Connection, timeoutMs = 2000): Promise<boolean> {
  if (connection.readyState !== 1 || !connection.db) return false;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const ping = connection.db.command({ ping: 1 }).then(() => true, () => false);
  try {
    return await Promise.race([ping, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const ASSETS: Record<string, string> = {
  'gatehouse.css': 'text/css; charset=utf-8',
  'passkey.js': 'text/javascript; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
  'simplewebauthn-browser.js': 'text/javascript; charset=utf-8',
};
/** Assets served straight from an installed package rather than views/assets. */
const PACKAGE_ASSETS: Record<string, string> = {
  'simplewebauthn-browser.js': path.join(projectRoot, 'node_modules', '@simplewebauthn', 'browser', 'dist', 'bundle', 'index.umd.min.js'),
};

function isLoopback(address: string | undefined): boolean {
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
}

/**
 * Endpoints oidc-provider serves itself (its default routes, which src/oidc/provider.ts keeps) and no route
 * of ours shares: machine-to-machine calls that need none of our templates, form parsing, Origin check or
 * routers. They go straight to the provider after the request id, headers, error boundary, https and
 * database checks, which every request passes. (Matching our ~15 routers and wrappers cost every token,
 * introspection and userinfo call measurable CPU: docs/benchmarks.md, third round.)
 */
export const PROVIDER_ENDPOINTS: ReadonlySet<string> = new Set([
  '/token',
  '/token/introspection',
  '/token/revocation',
  '/me',
  '/jwks',
  '/.well-known/openid-configuration',
]);

export function createApp(services: Services): Koa {
  const { config, log, provider, connection } = services;
  const app = new Koa();
  // oidc-provider's signed cookies are read back by our routes too, so both use the same keys.
  app.keys = services.keys.cookieKeys;
  app.proxy = config.trustProxy;
  // Behind one proxy, only its X-Forwarded-For entry is trusted (the client can write the others).
  app.maxIpsCount = 1;

  const { guesses } = services;
  const csrf = new CsrfTokens(createHmac('sha256', services.keys.cookieKeys[0]!).update('gatehouse:csrf').digest('base64url'));
  const flow = new SignInFlow({
    provider,
    accounts: services.accounts,
    hasher: services.hasher,
    audit: services.audit,
    csrf,
    states: services.signInStates,
    guesses,
    lockout: services.lockout,
    trustedDevices: services.factors.trustedDevice,
    webauthn: services.factors.webauthn,
    knownBrowsers: services.knownBrowsers,
    deviceCookies: new DeviceCookies(createHmac('sha256', services.keys.cookieKeys[0]!).update('gatehouse:device-cookie').digest(), config.issuer.startsWith('https:')),
    alerts: services.alerts,
    factors: services.secondFactors,
    clock: services.clock,
  });

  app.use(requestContext(log));
  app.use(securityHeaders);
  app.use(errorBoundary(log));
  app.use(requireHttps(config.issuer));
  app.use(requireDatabase(connection));
  // Our pages and routes, in order; requests for the provider's own endpoints skip them (below).
  // (Router middleware types its context with params; koa's app.use accepts either, and so does this list.)
  const ours: Koa.Middleware<Koa.DefaultState, any>[] = [];
  // Compiled templates are cached in production (recompiling each page cost ~1 ms per render).
  ours.push(views(VIEWS_DIR, { extension: 'ejs', options: { cache: config.env === 'production' } }));
  ours.push(sameOriginPosts(new URL(config.issuer).origin));

  const site = new Router();
  site.get('/', async (ctx) => {
    await ctx.render('home', { title: 'Gatehouse', issuer: config.issuer, demo: config.demo.enabled });
  });
  site.get('/health', async (ctx) => {
    const up = await databaseAnswers(connection);
    ctx.status = up ? 200 : 503;
    ctx.body = { status: up ? 'ok' : 'unavailable', database: up ? 'up' : 'down' };
  });
  site.get('/assets/:file', async (ctx) => {
    const type = ASSETS[ctx.params.file!];
    if (!type) return ctx.throw(404, 'There is nothing at this address.');
    ctx.type = type;
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = await readFile(PACKAGE_ASSETS[ctx.params.file!] ?? path.join(VIEWS_DIR, 'assets', ctx.params.file!));
  });
  // Browsers ask for /favicon.ico whatever the page links: send them to the SVG instead of a 404.
  site.get('/favicon.ico', (ctx) => {
    ctx.status = 301;
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.redirect('/assets/favicon.svg');
  });
  if (services.mailer.devMailbox) {
    const mailbox = services.mailer.devMailbox;
    const texts = services.sms instanceof ConsoleSmsGateway ? services.sms : undefined;
    // Codes and links are shown here: only to this machine, never to the rest of the network.
    site.get('/dev/mailbox', async (ctx) => {
      if (!isLoopback(ctx.socket.remoteAddress)) return ctx.throw(404, 'There is nothing at this address.');
      await ctx.render('dev-mailbox', { title: 'Development mailbox', mails: mailbox.list(), texts: texts?.list() ?? [] });
    });
  }
  ours.push(site.routes());
  // The self-service account area (passkeys, remembered devices): src/selfservice/.
  ours.push(accountRoutes(services).routes());

  // The admin REST API (JSON, Bearer tokens from this provider), with its own JSON body parser.
  ours.push(adminApi(services));

  // Only our own routes get a body parser: oidc-provider parses its own request bodies.
  const parseForms = bodyParser({ enableTypes: ['form'], formLimit: '32kb', encoding: 'utf-8' });
  // The passkey ceremonies (views/assets/passkey.js) post JSON, and only to their own routes.
  const parseJson = bodyParser({ enableTypes: ['json'], jsonLimit: '64kb', encoding: 'utf-8' });
  const interactions = interactionRoutes(flow, csrf, services.rateLimits);
  ours.push(async (ctx, next) => {
    if (!ctx.path.startsWith('/interaction/')) return next();
    await readBody(ctx, /\/passkey\/[a-z]+$/.test(ctx.path) ? parseJson : parseForms);
    await next();
  });
  ours.push(interactions.routes());
  ours.push(interactions.allowedMethods());

  // "Forgot User ID or password?" and account activation (src/recovery/), with the same form parsing.
  ours.push(async (ctx, next) => {
    if (ctx.method === 'POST' && /^\/(recover|activate)(\/|$)/.test(ctx.path)) await readBody(ctx, parseForms);
    await next();
  });
  const recovery = new Recovery({
    accounts: services.accounts,
    accountAdmin: services.admin.accountAdmin,
    invitations: services.admin.invitations,
    factors: services.factors,
    hasher: services.hasher,
    lockout: services.lockout,
    guesses,
    flows: new RecoveryFlows(connection),
    audit: services.audit,
    alerts: services.alerts,
    mailer: services.mailer,
    clock: services.clock,
    log,
    issuer: config.issuer,
  });
  const formCsrf = new FormCsrf(createHmac('sha256', services.keys.cookieKeys[0]!).update('gatehouse:form-csrf').digest(), config.issuer.startsWith('https:'));
  ours.push(recoveryRoutes({ recovery, csrf: formCsrf, rateLimits: services.rateLimits, secureCookies: config.issuer.startsWith('https:'), passwordRules: config.password, appReturns: appReturns(provider) }).routes());

  if (config.demo.enabled) {
    const demo = demoRoutes(services);
    ours.push(demo.routes());
  }

  const ourRoutes = compose(ours);
  const oidc = mount(provider as unknown as Koa);
  app.use((ctx, next) => (PROVIDER_ENDPOINTS.has(ctx.path) ? oidc(ctx, next) : ourRoutes(ctx, () => oidc(ctx, next))));
  return app;
}
