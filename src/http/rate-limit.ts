/**
 * Rate limits per IP and per identifier, kept in MongoDB (rate-limiter-flexible's RateLimiterMongo), so
 * every Gatehouse node counts against the same numbers.
 *
 * Buckets and their two keys (numbers in config `rateLimits.<bucket>.<ip|identifier>`):
 *   - `signin`     the IP, and the login as typed (User ID or email)
 *   - `code-send`  the IP, and the account the code goes to (its id)
 *   - `recovery`   the IP, and the identifier the recovery is asked for
 * Each key kind has a fixed window: `points` requests per `durationSeconds`, starting with the first
 * request of the window. Counters live in the `rate_limits` collection and expire with a TTL index.
 *
 * Keys:
 *   - Identifiers are trimmed, NFKC-normalised and lower-cased, then stored only as a SHA-256 hash
 *     (HMAC-SHA-256 when an `identifierKey` is given): the collection never holds what people typed.
 *     An empty identifier counts against the IP only.
 *   - IPv4 addresses (also IPv4-mapped IPv6) are used as they are; IPv6 addresses by their /64 prefix,
 *     since one subscriber usually holds a whole /64 and could otherwise rotate addresses freely.
 *
 * Order of consumption: the IP first, then the identifier. A request refused by its IP does not touch
 * the identifier's count (so further requests from a throttled source cannot keep someone else's
 * account throttled); a request refused by the identifier has still used one IP point (so cycling
 * through identifiers uses up the IP's allowance).
 *
 * Failures: a database error is rethrown as a 503 (`RateLimitUnavailableError`), which the error
 * boundary (src/http/middleware.ts) answers as "temporarily unavailable". Never fails open.
 *
 * Audit: when a key goes over its limit, the one request that crossed it records `ratelimit.exceeded`
 * (bucket, key kind, limit; never the identifier) — once per window, however many nodes or requests
 * follow. `reset()` of a key that was over its limit records `ratelimit.reset`.
 *
 * Usage (the lead wires this into the routes):
 *
 *   // in a route, before doing the work:
 *   if (!(await services.rateLimits.guard(ctx, 'signin', login))) return; // 429 already answered
 *
 *   // or by hand:
 *   const result = await rateLimits.consume('code-send', { ip: ctx.ip, identifier: accountId }, requestFacts(ctx));
 *   if (!result.ok) return respondTooManyRequests(ctx, result.retryAfterSeconds);
 *
 *   // an admin clearing a throttle (audited when the key was over its limit):
 *   await rateLimits.reset('signin', { identifier: login }, { actor: { kind: 'account', id: adminId } });
 */
import { createHash, createHmac } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { Context } from 'koa';
import type { Connection } from 'mongoose';
import { RateLimiterMongo, RateLimiterRes } from 'rate-limiter-flexible';
import type { AuditEvent, AuditLog } from '../audit/audit.js';
import { wantsJson } from './middleware.js';
import { renderView } from './render.js';

export const RATE_LIMIT_BUCKETS = ['signin', 'code-send', 'recovery'] as const;
export type RateLimitBucket = (typeof RATE_LIMIT_BUCKETS)[number];
export type RateLimitKeyKind = 'ip' | 'identifier';

export interface RateLimitRule {
  points: number;
  durationSeconds: number;
}

export type RateLimitConfig = Record<RateLimitBucket, Record<RateLimitKeyKind, RateLimitRule>>;

export type RateLimitResult = { ok: true } | { ok: false; retryAfterSeconds: number; limitedBy: RateLimitKeyKind };

export interface RateLimitKeys {
  ip: string;
  /** Login, email or account id; optional (some requests only have an IP). */
  identifier?: string | null;
}

/** Request facts for the audit entry of an exceeded limit. */
export interface RateLimitRequestFacts {
  userAgent?: string;
  requestId?: string;
  clientId?: string;
  actor?: AuditEvent['actor'];
}

export interface RateLimitOptions {
  /** Where `ratelimit.*` events go; without it nothing is audited (tests of the counting alone). */
  audit?: Pick<AuditLog, 'record'>;
  /** With a key, identifiers are hashed with HMAC-SHA-256 instead of plain SHA-256. */
  identifierKey?: Buffer | string;
  /** The collection holding the counters (default `rate_limits`). */
  collection?: string;
}

export const RATE_LIMIT_COLLECTION = 'rate_limits';

/** A rate limit could not be checked because the database failed: answered as 503, never as a pass. */
export class RateLimitUnavailableError extends Error {
  readonly status = 503;
  readonly statusCode = 503;
  readonly expose = false;
  constructor(cause: unknown) {
    super('rate limits cannot be checked: the database did not answer', { cause });
    this.name = 'RateLimitUnavailableError';
  }
}

export class RateLimits {
  private readonly limiters: Record<RateLimitBucket, Record<RateLimitKeyKind, RateLimiterMongo>>;
  private readonly audit: Pick<AuditLog, 'record'> | undefined;
  private readonly identifierKey: Buffer | string | undefined;
  private ready: Promise<void> | undefined;

  constructor(
    connection: Connection,
    readonly config: RateLimitConfig,
    options: RateLimitOptions = {},
  ) {
    this.audit = options.audit;
    this.identifierKey = options.identifierKey;
    const tableName = options.collection ?? RATE_LIMIT_COLLECTION;
    const limiter = (bucket: RateLimitBucket, kind: RateLimitKeyKind): RateLimiterMongo =>
      new RateLimiterMongo({
        // A mongoose Connection: the limiter uses connection.collection(tableName), i.e. our connection's
        // database, without buffering while disconnected (see src/db/connection.ts).
        storeClient: connection,
        tableName,
        keyPrefix: `${bucket}:${kind}`,
        points: config[bucket][kind].points,
        duration: config[bucket][kind].durationSeconds,
        // Indexes are created once by init(), awaited, instead of fire-and-forget per limiter.
        disableIndexesCreation: true,
      });
    this.limiters = Object.fromEntries(RATE_LIMIT_BUCKETS.map((b) => [b, { ip: limiter(b, 'ip'), identifier: limiter(b, 'identifier') }])) as RateLimits['limiters'];
  }

  /**
   * Creates the collection's indexes (unique `key`, TTL on `expire`). consume() waits for it, so calling
   * it at start only moves the work (and a failure) there; after a failure the next call tries again.
   */
  init(): Promise<void> {
    this.ready ??= this.limiters.signin.ip.createIndexes().catch((err: unknown) => {
      this.ready = undefined;
      throw new RateLimitUnavailableError(err);
    });
    return this.ready;
  }

  /** The key a (normalised, hashed) identifier is counted under. Exposed for tests and support tools. */
  identifierKeyFor(identifier: string): string | null {
    const normalized = identifier.normalize('NFKC').trim().toLowerCase();
    if (!normalized) return null;
    const hash = this.identifierKey ? createHmac('sha256', this.identifierKey) : createHash('sha256').update('gatehouse:rate-limit:');
    return hash.update(normalized).digest('base64url');
  }

  /** Takes one point from the IP and (if allowed) from the identifier. See the file header for the rules. */
  async consume(bucket: RateLimitBucket, keys: RateLimitKeys, facts: RateLimitRequestFacts = {}): Promise<RateLimitResult> {
    await this.init();
    const ip = ipKey(keys.ip);
    const byIp = await this.take(bucket, 'ip', ip);
    if (!byIp.ok) {
      await this.auditExceeded(bucket, 'ip', byIp, keys, facts);
      return { ok: false, retryAfterSeconds: byIp.retryAfterSeconds, limitedBy: 'ip' };
    }
    const identifier = keys.identifier ? this.identifierKeyFor(keys.identifier) : null;
    if (identifier === null) return { ok: true };
    const byIdentifier = await this.take(bucket, 'identifier', identifier);
    if (!byIdentifier.ok) {
      await this.auditExceeded(bucket, 'identifier', byIdentifier, keys, facts);
      return { ok: false, retryAfterSeconds: byIdentifier.retryAfterSeconds, limitedBy: 'identifier' };
    }
    return { ok: true };
  }

  /**
   * consume() for a Koa request: true when the request may go on; otherwise the 429 (page or JSON) has
   * been answered and the caller must stop. The identifier is optional.
   */
  async guard(ctx: Context, bucket: RateLimitBucket, identifier?: string | null, facts: RateLimitRequestFacts = {}): Promise<boolean> {
    const result = await this.consume(bucket, { ip: ctx.ip, identifier }, { ...requestFacts(ctx), ...facts });
    if (result.ok) return true;
    await respondTooManyRequests(ctx, result.retryAfterSeconds);
    return false;
  }

  /**
   * Whether an identifier is over its limit in a bucket right now (the next request with it would be
   * refused), without consuming: lets an administrator's unlock tell a throttle in force from none.
   */
  async identifierLimited(bucket: RateLimitBucket, identifier: string): Promise<boolean> {
    await this.init();
    const key = this.identifierKeyFor(identifier);
    if (key === null) return false;
    try {
      const current = await this.limiters[bucket].identifier.get(key);
      return current !== null && current.consumedPoints >= this.config[bucket].identifier.points;
    } catch (err) {
      throw new RateLimitUnavailableError(err);
    }
  }

  /**
   * Clears the counters of the given keys in a bucket (e.g. an administrator lifting a throttle).
   * Audited as `ratelimit.reset` for each key that was over its limit. Returns the key kinds cleared.
   */
  async reset(bucket: RateLimitBucket, keys: Partial<RateLimitKeys>, facts: RateLimitRequestFacts & { ip?: string } = {}): Promise<RateLimitKeyKind[]> {
    await this.init();
    const targets: Array<[RateLimitKeyKind, string]> = [];
    if (keys.ip) targets.push(['ip', ipKey(keys.ip)]);
    const identifier = keys.identifier ? this.identifierKeyFor(keys.identifier) : null;
    if (identifier) targets.push(['identifier', identifier]);
    const cleared: RateLimitKeyKind[] = [];
    for (const [kind, key] of targets) {
      const limiter = this.limiters[bucket][kind];
      let wasLimited: boolean;
      try {
        const current = await limiter.get(key);
        wasLimited = current !== null && current.consumedPoints > this.config[bucket][kind].points;
        if (await limiter.delete(key)) cleared.push(kind);
      } catch (err) {
        throw new RateLimitUnavailableError(err);
      }
      if (wasLimited && this.audit) {
        await this.audit.record({
          type: 'ratelimit.reset',
          outcome: 'success',
          actor: facts.actor ?? { kind: 'system' },
          ...auditFacts(facts),
          details: { bucket, limitedBy: kind },
        });
      }
    }
    return cleared;
  }

  private async take(bucket: RateLimitBucket, kind: RateLimitKeyKind, key: string): Promise<{ ok: true } | { ok: false; retryAfterSeconds: number; firstRefusal: boolean }> {
    const limiter = this.limiters[bucket][kind];
    try {
      await limiter.consume(key, 1);
      return { ok: true };
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw new RateLimitUnavailableError(rejection);
      return {
        ok: false,
        retryAfterSeconds: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)),
        // The $inc is atomic, so exactly one request in a window sees the count go to points + 1.
        firstRefusal: rejection.consumedPoints === this.config[bucket][kind].points + 1,
      };
    }
  }

  private async auditExceeded(bucket: RateLimitBucket, kind: RateLimitKeyKind, refusal: { retryAfterSeconds: number; firstRefusal: boolean }, keys: RateLimitKeys, facts: RateLimitRequestFacts): Promise<void> {
    if (!refusal.firstRefusal || !this.audit) return;
    const rule = this.config[bucket][kind];
    await this.audit.record({
      type: 'ratelimit.exceeded',
      outcome: 'failure',
      actor: facts.actor ?? { kind: 'anonymous' },
      ...auditFacts({ ...facts, ip: keys.ip }),
      details: { bucket, limitedBy: kind, points: rule.points, durationSeconds: rule.durationSeconds, retryAfterSeconds: refusal.retryAfterSeconds },
    });
  }
}

function auditFacts(facts: RateLimitRequestFacts & { ip?: string }): Pick<AuditEvent, 'ip' | 'userAgent' | 'requestId' | 'clientId'> {
  const out: Pick<AuditEvent, 'ip' | 'userAgent' | 'requestId' | 'clientId'> = {};
  if (facts.ip) out.ip = facts.ip;
  if (facts.userAgent) out.userAgent = facts.userAgent;
  if (facts.requestId) out.requestId = facts.requestId;
  if (facts.clientId) out.clientId = facts.clientId;
  return out;
}

/** The audit facts of a Koa request (the IP comes from the keys). */
export function requestFacts(ctx: Context): RateLimitRequestFacts {
  const facts: RateLimitRequestFacts = { userAgent: ctx.get('user-agent').slice(0, 256) };
  if (typeof ctx.state.requestId === 'string') facts.requestId = ctx.state.requestId;
  return facts;
}

/**
 * The key an address is counted under: IPv4 as is (IPv4-mapped IPv6 unwrapped), IPv6 by its /64.
 * Anything else (no proxy header parsing happens here; Koa's ctx.ip decides) is used as text, bounded.
 */
export function ipKey(ip: string): string {
  let value = ip.trim();
  const zone = value.indexOf('%');
  if (zone >= 0) value = value.slice(0, zone);
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(value);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  if (isIPv4(value)) return value;
  if (isIPv6(value)) return `${expandIpv6(value).slice(0, 4).join(':')}::/64`;
  return value.slice(0, 64) || 'unknown';
}

/** The eight groups of a valid IPv6 address, without leading zeros. */
function expandIpv6(address: string): string[] {
  let text = address.toLowerCase();
  const v4 = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4[1]!.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const front = head ? head.split(':') : [];
  const back = tail ? tail.split(':') : [];
  const groups = tail === undefined ? front : [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back];
  return groups.map((g) => parseInt(g, 16).toString(16));
}


export function tooManyRequestsMessage(retryAfterSeconds: number): string {
  const minutes = Math.max(1, Math.ceil(retryAfterSeconds / 60));
  return `Too many attempts. For your security, please wait ${minutes} ${minutes === 1 ? 'minute' : 'minutes'} and try again.`;
}

/**
 * Answers a throttled request: 429 with Retry-After (whole seconds, at least 1), and JSON
 * `{ error: 'too_many_requests', error_description }` for API clients or the error page for browsers.
 */
export async function respondTooManyRequests(ctx: Context, retryAfterSeconds: number): Promise<void> {
  const seconds = Math.max(1, Math.ceil(Number.isFinite(retryAfterSeconds) ? retryAfterSeconds : 1));
  const message = tooManyRequestsMessage(seconds);
  ctx.status = 429;
  ctx.set('Retry-After', String(seconds));
  ctx.set('Cache-Control', 'no-store');
  if (wantsJson(ctx)) {
    ctx.body = { error: 'too_many_requests', error_description: message };
    return;
  }
  const locals = { title: 'Too many attempts', heading: 'Too many attempts', message, detail: null, code: 'too_many_requests' };
  if (typeof ctx.render === 'function') {
    await ctx.render('error', locals);
    ctx.status = 429; // koa-views leaves the status alone, but be explicit
  } else {
    ctx.type = 'html';
    ctx.body = await renderView('error', locals);
  }
}
