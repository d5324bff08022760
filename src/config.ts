/**
 * Configuration: config/default.json, then config/<NODE_ENV>.json, then environment variables.
 * Validated once at start; every bad field is reported by its path so an operator can fix it.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { relyingPartyProblems } from './factors/webauthn/relying-party.js';

/** The folder holding package.json, config/ and views/, whether we run from src/ or a build in dist/. */
function findProjectRoot(start: string): string {
  let dir = start;
  while (!existsSync(path.join(dir, 'package.json')) || !existsSync(path.join(dir, 'views'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the Gatehouse project folder above ${start}`);
    dir = parent;
  }
  return dir;
}

export const projectRoot = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)));

const positiveInt = z.number().int().positive();

/** One rate limit: at most `points` requests per `durationSeconds` window. */
const rateLimitRule = z.object({
  points: z.number('must be a number').int('must be a whole number').min(1, 'must be at least 1').max(1_000_000, 'must be at most 1000000'),
  durationSeconds: z
    .number('must be a number of seconds')
    .int('must be a whole number of seconds')
    .min(1, 'must be at least 1 second')
    .max(86_400, 'must be at most 86400 (one day)'),
});
const rateLimitBucket = z.object({ ip: rateLimitRule, identifier: rateLimitRule });

/** An RFC 8707 resource indicator as Gatehouse accepts one: an https, http or urn URI, without query or fragment. */
function isResourceIndicator(value: string): boolean {
  try {
    const url = new URL(value);
    return ['https:', 'http:', 'urn:'].includes(url.protocol) && url.search === '' && !value.includes('#') && !value.includes('?');
  } catch {
    return false;
  }
}

/**
 * Scope names an API may not offer: OpenID Connect's own and Gatehouse's admin scopes. An API scope with
 * one of these names would be granted as an API scope where the OIDC or admin rules would refuse it.
 */
const RESERVED_SCOPE = /^(openid|offline_access|profile|email|phone|address|admin|admin:.*)$/;

/** An API that clients may ask access tokens for (RFC 8707 `resource`): src/oidc/resource-servers.ts. */
const resourceServer = z
  .object({
    scopes: z
      .array(
        z
          .string()
          .regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'must be a scope name (printable characters, no spaces, quotes or backslashes)')
          .refine((scope) => !RESERVED_SCOPE.test(scope), 'is reserved (OpenID Connect and admin scopes cannot be API scopes)'),
      )
      .min(1, 'must name at least one scope')
      .max(100)
      .refine((scopes) => new Set(scopes).size === scopes.length, 'must not repeat a scope'),
    accessTokenFormat: z.enum(['jwt', 'opaque']).default('jwt'),
    signingAlg: z.enum(['ES256', 'RS256']).default('ES256'),
    // null → ttl.accessTokenSeconds (ttl.clientCredentialsSeconds for client_credentials tokens).
    accessTokenSeconds: z.number().int().min(30).max(86_400).nullable().default(null),
    // The client ids allowed to ask for it, or "*" for every client: always said explicitly, so that declaring
    // an API never opens it to every registered (or self-registered) client by default.
    clients: z.union([z.literal('*'), z.array(z.string().min(1)).min(1, 'must list at least one client id, or be "*"')], {
      error: 'must be a list of client ids, or "*" for every client',
    }),
  })
  .strict();

const configSchema = z
  .object({
    env: z.enum(['development', 'production', 'test']),
    port: z.number().int().min(0).max(65535),
    issuer: z.url({ protocol: /^https?$/ }).nullable(),
    trustProxy: z.boolean().nullable(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    dataDir: z.string().min(1),
    mongodb: z.object({
      uri: z.string().regex(/^mongodb(\+srv)?:\/\//, 'must be a mongodb:// or mongodb+srv:// URI').nullable(),
      embedded: z.object({ port: z.number().int().min(1).max(65535) }),
      serverSelectionTimeoutMs: positiveInt,
      // A command with no answer for this long fails (503) and its connection is closed. Reads are retried
      // once by the driver, so a read can wait twice this. It bounds start-up's index builds too.
      operationTimeoutMs: z.number().int().min(1000, 'must be at least 1000').max(600_000, 'must be at most 600000'),
    }),
    mail: z.object({
      smtpUrl: z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL').nullable(),
      from: z.string().min(3),
    }),
    sms: z.object({
      // The HTTP gateway that delivers text messages; without it, development prints them (never production).
      webhookUrl: z.url({ protocol: /^https?$/ }).nullable(),
      webhookToken: z.string().min(1).nullable(),
    }),
    secrets: z.object({
      key: z.string().nullable(),
      previousKeys: z.array(z.string()),
    }),
    password: z
      .object({
        // Counted in characters; below 8 is weaker than NIST SP 800-63B allows.
        minLength: z.number().int().min(8, 'must be at least 8 (the NIST SP 800-63B minimum)').max(128, 'must be at most 128'),
        maxLength: z.number().int().min(16).max(4096),
        // Character-class rules; all off by default: length and the common-password blocklist are the
        // modern guidance (NIST SP 800-63B), and forced classes mostly produce "Password1!".
        composition: z
          .object({
            minCharacterClasses: z
              .number()
              .int('must be a whole number')
              .min(0, 'must be 0 (off) to 4')
              .max(4, 'must be 0 (off) to 4: there are four classes (lower-case, upper-case, digit, symbol)'),
            requireLowercase: z.boolean('must be true or false'),
            requireUppercase: z.boolean('must be true or false'),
            requireDigit: z.boolean('must be true or false'),
            requireSymbol: z.boolean('must be true or false'),
          })
          .strict(),
        argon2: z.object({
          memoryCost: z.number().int().min(8192),
          timeCost: z.number().int().min(1),
          parallelism: z.number().int().min(1).max(16),
        }),
      })
      .refine((password) => password.minLength <= password.maxLength, {
        path: ['maxLength'],
        message: 'must not be less than password.minLength',
      }),
    ttl: z.object({
      interactionSeconds: positiveInt,
      sessionSeconds: positiveInt,
      accessTokenSeconds: positiveInt,
      clientCredentialsSeconds: positiveInt,
      refreshTokenSeconds: positiveInt,
      idTokenSeconds: positiveInt,
      grantSeconds: positiveInt,
    }),
    audit: z.object({
      // Entries older than this are removed by a TTL index; null keeps them for ever.
      retentionDays: z.number().int().min(1).max(36_500).nullable(),
    }),
    webauthn: z.object({
      // The RP ID passkeys are bound to; null → the issuer's host. Changing it later orphans every passkey.
      rpId: z.string().min(1).max(253).nullable(),
      rpName: z.string().min(1).max(64),
      // Pages allowed to run the ceremonies; empty → the issuer's origin only.
      origins: z.array(z.string()).max(20),
      challengeTtlSeconds: z.number().int().min(30).max(3600),
    }),
    invitations: z.object({
      // How long the activation link mailed to an account created without a password works.
      lifetimeHours: z.number().int().min(1).max(24 * 30),
    }),
    // Requests per window, per IP and per identifier, for each bucket (src/http/rate-limit.ts).
    rateLimits: z.object({
      signin: rateLimitBucket,
      'code-send': rateLimitBucket,
      recovery: rateLimitBucket,
    }),
    resourceServers: z.record(z.string(), resourceServer).superRefine((servers, ctx) => {
      for (const indicator of Object.keys(servers)) {
        if (!isResourceIndicator(indicator)) ctx.addIssue({ code: 'custom', path: [indicator], message: 'must be an absolute URI without a fragment' });
      }
    }),
    demo: z.object({
      enabled: z.boolean(),
      clientId: z.string().min(1),
      userId: z.string().min(1),
      password: z.string().min(8),
    }),
  })
  .strict();

type RawConfig = z.infer<typeof configSchema>;
export type Config = Omit<RawConfig, 'issuer' | 'trustProxy'> & { issuer: string; trustProxy: boolean };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Json = Record<string, unknown>;

function isPlainObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepMerge(base: Json, override: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function readJson(file: string): Json {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (!isPlainObject(parsed)) throw new Error('top level must be an object');
    return parsed;
  } catch (err) {
    throw new ConfigError([`${file}: ${(err as Error).message}`]);
  }
}

function setPath(target: Json, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (!isPlainObject(node[key])) node[key] = {};
    node = node[key] as Json;
  }
  node[keys[keys.length - 1]!] = value;
}

/** Environment variables that override the files; numbers and booleans are parsed, bad ones reported. */
const envOverrides: Array<[variable: string, path: string, kind: 'string' | 'int' | 'bool' | 'list']> = [
  ['PORT', 'port', 'int'],
  ['ISSUER', 'issuer', 'string'],
  ['TRUST_PROXY', 'trustProxy', 'bool'],
  ['LOG_LEVEL', 'logLevel', 'string'],
  ['GATEHOUSE_DATA_DIR', 'dataDir', 'string'],
  ['MONGODB_URI', 'mongodb.uri', 'string'],
  ['GATEHOUSE_EMBEDDED_DB_PORT', 'mongodb.embedded.port', 'int'],
  ['MONGODB_OPERATION_TIMEOUT_MS', 'mongodb.operationTimeoutMs', 'int'],
  ['SMTP_URL', 'mail.smtpUrl', 'string'],
  ['MAIL_FROM', 'mail.from', 'string'],
  ['SMS_WEBHOOK_URL', 'sms.webhookUrl', 'string'],
  ['SMS_WEBHOOK_TOKEN', 'sms.webhookToken', 'string'],
  ['GATEHOUSE_SECRETS_KEY', 'secrets.key', 'string'],
  ['GATEHOUSE_SECRETS_PREVIOUS_KEYS', 'secrets.previousKeys', 'list'],
  ['GATEHOUSE_DEMO', 'demo.enabled', 'bool'],
  ['AUDIT_RETENTION_DAYS', 'audit.retentionDays', 'int'],
];

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  configDir?: string;
  /** Programmatic overrides applied last (tests use these). */
  overrides?: Json;
}

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const configDir = options.configDir ?? env.GATEHOUSE_CONFIG_DIR ?? path.join(projectRoot, 'config');
  const nodeEnv = env.NODE_ENV ?? 'development';
  const problems: string[] = [];

  let raw = readJson(path.join(configDir, 'default.json'));
  const envFile = path.join(configDir, `${nodeEnv}.json`);
  if (existsSync(envFile)) raw = deepMerge(raw, readJson(envFile));
  raw.env = nodeEnv;

  for (const [variable, target, kind] of envOverrides) {
    const value = env[variable];
    if (value === undefined || value === '') continue;
    if (kind === 'int') {
      if (!/^\d+$/.test(value)) problems.push(`${variable}: must be a whole number, got "${value}"`);
      else setPath(raw, target, Number(value));
    } else if (kind === 'bool') {
      if (!/^(true|false|1|0)$/i.test(value)) problems.push(`${variable}: must be true or false, got "${value}"`);
      else setPath(raw, target, /^(true|1)$/i.test(value));
    } else if (kind === 'list') {
      setPath(raw, target, value.split(',').map((v) => v.trim()).filter(Boolean));
    } else {
      setPath(raw, target, value);
    }
  }
  if (options.overrides) raw = deepMerge(raw, options.overrides);

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);

  const config = parsed.data;
  if (config.env === 'production' && !config.secrets.key) {
    throw new ConfigError(['secrets.key: GATEHOUSE_SECRETS_KEY is required in production (32 random bytes, base64)']);
  }
  if (config.env === 'production' && config.demo.enabled) {
    throw new ConfigError(['demo.enabled: the demo client and account are never enabled in production']);
  }
  const issuer = (config.issuer ?? `http://localhost:${config.port}`).replace(/\/+$/, '');
  // Explicit passkey settings must be right; derived ones that cannot work (an IP-address issuer, say)
  // only leave passkeys unavailable, with a warning at start.
  if (config.webauthn.rpId !== null || config.webauthn.origins.length > 0) {
    const webauthnProblems = relyingPartyProblems(config.webauthn, issuer);
    if (webauthnProblems.length > 0) throw new ConfigError(webauthnProblems);
  }
  // Gatehouse itself speaks plain HTTP, so an https issuer means TLS ends at a proxy in front of it.
  const trustProxy = config.trustProxy ?? issuer.startsWith('https:');
  return { ...config, issuer, trustProxy, dataDir: path.resolve(projectRoot, config.dataDir) };
}
