/**
 * Administrative operations on accounts: search, update, status changes (disable, enable, unlock),
 * resetting the second factor, and revoking every session and grant. Each change is one atomic,
 * conditional update, so two administrators acting at once cannot overwrite each other unseen.
 *
 * Fields owned by other features are touched through the raw collection: `mfa` (the second factor,
 * with its secrets in the `credentials` collection). Temporary lockout after wrong passwords lives in
 * its own collection (lockout.ts); an account under one is shown as `locked` with its `lockedUntil`.
 */
import type { Connection } from 'mongoose';
import { z } from 'zod';
import { ConflictError, InputError, NotFoundError, duplicateKeyField } from '../errors.js';
import { ACCOUNT_ARTIFACTS, CONSENT_RECORDS, removeArtifacts } from '../oidc/revocation.js';
import type { AccountFields, AccountStatus } from './account.model.js';
import type { AccountService } from './accounts.js';
import type { Lockout } from './lockout.js';
import type { RateLimitRequestFacts, RateLimits } from '../http/rate-limit.js';
import type { GuessLimit } from '../interactions/guess-limit.js';

/** The collection where each second factor keeps its secrets, keyed by `accountId`. */
const CREDENTIALS_COLLECTION = 'credentials';

export type RawAccount = AccountFields & { lockedUntil?: Date | null };

/** Enrolled in a second factor: the enrolment has a date (see issue 4's `mfa` state). */
function secondFactorEnrolled(a: RawAccount): boolean {
  return Boolean((a.mfa as { enrolledAt?: unknown } | null | undefined)?.enrolledAt);
}

export interface AccountView {
  accountId: string;
  userId: string;
  email: string | null;
  emailVerified: boolean;
  name: string;
  phone: string | null;
  phoneVerified: boolean;
  market: string;
  roles: string[];
  status: AccountStatus;
  hasPassword: boolean;
  secondFactorEnrolled: boolean;
  lockedUntil: string | null;
  createdAt: string;
  updatedAt: string;
}

/** What the admin API and CLI show of an account: never the password hash or second-factor data. */
export function accountView(a: RawAccount): AccountView {
  return {
    accountId: a.accountId,
    userId: a.userId,
    email: a.email ?? null,
    emailVerified: a.emailVerified === true,
    name: a.name,
    phone: a.phone ?? null,
    phoneVerified: a.phoneVerified === true,
    market: a.market,
    roles: [...(a.roles ?? [])],
    status: a.status,
    hasPassword: Boolean(a.passwordHash),
    secondFactorEnrolled: secondFactorEnrolled(a),
    lockedUntil: a.lockedUntil instanceof Date ? a.lockedUntil.toISOString() : null,
    createdAt: new Date(a.createdAt).toISOString(),
    updatedAt: new Date(a.updatedAt).toISOString(),
  };
}

export const roleName = z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'must be a lower-case role name');

/** A change to an account. `null` removes email or phone. Unknown fields are refused. */
export const accountPatch = z
  .object({
    name: z.string().trim().min(1, 'must not be empty').max(200),
    email: z.email('must be a valid email address').max(254).nullable(),
    phone: z.string().regex(/^\+[1-9]\d{6,14}$/, 'must be in E.164 form, e.g. +14155550123').nullable(),
    market: z.string().regex(/^[A-Za-z0-9_-]{1,16}$/, 'must be a short market code such as US or default'),
    roles: z.array(roleName).max(32),
  })
  .partial()
  .strict();
export type AccountPatch = z.infer<typeof accountPatch>;

export const ACCOUNT_STATUS_FILTER = ['active', 'disabled', 'locked'] as const;

export interface AccountSearch {
  /** Part of the User ID or email, any letter case. */
  q?: string;
  status?: AccountStatus;
  role?: string;
  limit: number;
  /** Continue after this User ID (lower-cased): pages are ordered by User ID. */
  after?: string;
}

export type Changes = Record<string, { before: unknown; after: unknown }>;

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const TRANSITIONS = {
  disable: { from: ['active', 'locked'], to: 'disabled' },
  enable: { from: ['disabled'], to: 'active' },
  unlock: { from: ['locked'], to: 'active' },
} as const satisfies Record<string, { from: readonly AccountStatus[]; to: AccountStatus }>;
export type StatusAction = keyof typeof TRANSITIONS;

/**
 * What an unlock cleared: a lock after wrong passwords, a pause after wrong second-factor codes, the
 * sign-in rate limit on the account's User ID or email (src/http/rate-limit.ts), or several of these.
 */
export interface UnlockCleared {
  lockout: boolean;
  secondFactorPause: boolean;
  signInThrottle: boolean;
}

export class AccountAdmin {
  constructor(
    private readonly connection: Connection,
    private readonly accounts: AccountService,
    private readonly lockout?: Lockout,
    private readonly guesses?: Pick<GuessLimit, 'lift' | 'clear'>,
    private readonly rateLimits?: Pick<RateLimits, 'reset' | 'identifierLimited'>,
  ) {}

  /**
   * The sign-in throttle per typed identifier (src/http/rate-limit.ts) outlasts a lock; an unlock lifts it
   * for the account's User ID and email, or the owner would still be refused (429) after being helped.
   */
  private async liftSignInThrottle(raw: RawAccount, actor: RateLimitRequestFacts['actor']): Promise<void> {
    for (const identifier of [raw.userId, raw.email]) if (identifier) await this.rateLimits?.reset('signin', { identifier }, actor ? { actor } : {});
  }

  /** Whether the sign-in throttle is in force for the account's User ID or email (the next sign-in would get a 429). */
  private async signInThrottled(raw: RawAccount): Promise<boolean> {
    if (!this.rateLimits) return false;
    for (const identifier of [raw.userId, raw.email]) if (identifier && (await this.rateLimits.identifierLimited('signin', identifier))) return true;
    return false;
  }

  /** Adds the temporary lock (from the lockout records) to accounts read from the collection. */
  private async withLocks(docs: RawAccount[]): Promise<RawAccount[]> {
    if (!this.lockout || docs.length === 0) return docs;
    const locks = await this.lockout.locksFor(docs.map((d) => d.accountId));
    return docs.map((d) => {
      const until = locks.get(d.accountId);
      return until && !d.lockedUntil ? { ...d, lockedUntil: until, status: d.status === 'active' ? 'locked' : d.status } : d;
    });
  }

  private get collection() {
    return this.accounts.model.collection;
  }

  private async load(accountId: string): Promise<RawAccount> {
    const doc = (await this.collection.findOne({ accountId })) as unknown as RawAccount | null;
    if (!doc) throw new NotFoundError(`no account with id "${accountId}"`);
    return (await this.withLocks([doc]))[0]!;
  }

  async get(accountId: string): Promise<AccountView> {
    return accountView(await this.load(accountId));
  }

  async raw(accountId: string): Promise<RawAccount> {
    return this.load(accountId);
  }

  async page(search: AccountSearch): Promise<{ items: AccountView[]; more: boolean; last?: string }> {
    const and: Record<string, unknown>[] = [];
    if (search.q) {
      const pattern = escapeRegex(search.q.trim().toLowerCase());
      and.push({ $or: [{ userIdLower: { $regex: pattern } }, { emailLower: { $regex: pattern } }] });
    }
    if (search.status === 'locked' && this.lockout) {
      and.push({ $or: [{ status: 'locked' }, { status: 'active', accountId: { $in: await this.lockout.lockedAccountIds() } }] });
    } else if (search.status === 'active' && this.lockout) {
      and.push({ status: 'active', accountId: { $nin: await this.lockout.lockedAccountIds() } });
    } else if (search.status) and.push({ status: search.status });
    if (search.role) and.push({ roles: search.role });
    if (search.after !== undefined) and.push({ userIdLower: { $gt: search.after } });
    const docs = (await this.collection
      .find(and.length ? { $and: and } : {})
      .sort({ userIdLower: 1 })
      .limit(search.limit + 1)
      .toArray()) as unknown as RawAccount[];
    const items = await this.withLocks(docs.slice(0, search.limit));
    return { items: items.map(accountView), more: docs.length > search.limit, ...(items.length ? { last: items[items.length - 1]!.userIdLower } : {}) };
  }

  /** Applies a change; returns the account after it and the fields that changed. */
  async update(accountId: string, input: AccountPatch): Promise<{ account: AccountView; changes: Changes; before: RawAccount }> {
    const parsed = accountPatch.safeParse(input);
    if (!parsed.success) throw InputError.fromZod(parsed.error, 'invalid account');
    const patch = parsed.data;
    if (Object.keys(patch).length === 0) throw new InputError('invalid account: nothing to change', { '(input)': 'name at least one field to change' });

    const before = await this.load(accountId);
    // A market the policy file names and known roles; what the account already holds may be sent back.
    const market = this.accounts.checkMarketAndRoles(patch, { market: before.market, roles: before.roles ?? [] });
    const set: Record<string, unknown> = {};
    const unset: Record<string, ''> = {};
    const changes: Changes = {};
    const change = (field: string, was: unknown, now: unknown) => {
      if (JSON.stringify(was ?? null) !== JSON.stringify(now ?? null)) changes[field] = { before: was ?? null, after: now ?? null };
    };

    if (patch.name !== undefined && patch.name !== before.name) {
      set.name = patch.name;
      change('name', before.name, patch.name);
    }
    if (market !== undefined && market !== before.market) {
      set.market = market;
      change('market', before.market, market);
    }
    if (patch.roles !== undefined) {
      const roles = [...new Set(patch.roles)];
      if (JSON.stringify(roles) !== JSON.stringify(before.roles ?? [])) {
        set.roles = roles;
        change('roles', before.roles ?? [], roles);
      }
    }
    if (patch.email !== undefined && (patch.email ?? null) !== (before.email ?? null)) {
      // A new address is unverified until proven; the lower-cased copy backs the unique index.
      set.email = patch.email;
      set.emailVerified = false;
      if (patch.email === null) unset.emailLower = '';
      else set.emailLower = patch.email.toLowerCase();
      change('email', before.email, patch.email);
      change('emailVerified', before.emailVerified, false);
    }
    if (patch.phone !== undefined && (patch.phone ?? null) !== (before.phone ?? null)) {
      set.phone = patch.phone;
      set.phoneVerified = false;
      change('phone', before.phone, patch.phone);
      change('phoneVerified', before.phoneVerified, false);
    }
    if (Object.keys(changes).length === 0) return { account: accountView(before), changes, before };

    set.updatedAt = new Date();
    let after: RawAccount | null;
    try {
      after = (await this.collection.findOneAndUpdate(
        { accountId, updatedAt: before.updatedAt },
        { $set: set, ...(Object.keys(unset).length ? { $unset: unset } : {}) },
        { returnDocument: 'after' },
      )) as unknown as RawAccount | null;
    } catch (err) {
      const field = duplicateKeyField(err);
      if (field === false) throw err;
      throw new ConflictError('an account with this email already exists', 'email');
    }
    if (!after) throw new ConflictError('the account was changed by someone else at the same time; read it again and retry');
    return { account: accountView(after), changes, before };
  }

  /**
   * disable: active|locked → disabled; enable: disabled → active; unlock: locked → active. Unlock also clears
   * a temporary lock (wrong passwords), a second-factor pause (wrong codes) and the sign-in throttle on the
   * account's identifiers, and says which it cleared; on an active account, any one of them is enough.
   */
  async setStatus(accountId: string, action: StatusAction, actor?: RateLimitRequestFacts['actor']): Promise<{ account: AccountView; changes: Changes; cleared?: UnlockCleared }> {
    let pausedUntil: Date | null = null;
    let throttled = false;
    if (action === 'unlock' && (this.lockout || this.guesses || this.rateLimits)) {
      // A temporary lock and a pause are cleared here; a `locked` status continues below to active.
      const current = await this.load(accountId);
      const raw = (await this.collection.findOne({ accountId })) as unknown as RawAccount;
      if (raw.status === 'active') {
        const locked = (await this.lockout?.unlock(accountId, [raw.userId, raw.email])) ?? false;
        pausedUntil = (await this.guesses?.lift(accountId)) ?? null;
        // Many successful sign-ins in a short time throttle an account that is neither locked nor paused.
        throttled = await this.signInThrottled(raw);
        if (!locked && !pausedUntil && !throttled) {
          throw new ConflictError('the account is not locked, its second-factor verification is not paused, and its sign-in is not rate-limited');
        }
        // Only with a real unlock (a refused one must change nothing): the throttle, and the wrong codes
        // short of a pause, so that one more wrong code does not pause the account again at once.
        await this.liftSignInThrottle(raw, actor);
        await this.guesses?.clear(accountId);
        const changes: Changes = locked ? { status: { before: 'locked', after: 'active' }, lockedUntil: { before: current.lockedUntil ?? null, after: null } } : {};
        if (pausedUntil) changes.secondFactorPausedUntil = { before: pausedUntil, after: null };
        return { account: accountView({ ...raw, lockedUntil: null }), changes, cleared: { lockout: locked, secondFactorPause: pausedUntil !== null, signInThrottle: throttled } };
      }
      if (raw.status === 'locked') {
        await this.lockout?.unlock(accountId, [raw.userId, raw.email]);
        pausedUntil = (await this.guesses?.lift(accountId)) ?? null;
        throttled = await this.signInThrottled(raw);
        await this.liftSignInThrottle(raw, actor);
        await this.guesses?.clear(accountId);
      }
    }
    const { from, to } = TRANSITIONS[action];
    const after = (await this.collection.findOneAndUpdate(
      { accountId, status: { $in: [...from] } },
      { $set: { status: to, updatedAt: new Date() }, ...(action === 'unlock' || action === 'enable' ? { $unset: { lockedUntil: '' } } : {}) },
      { returnDocument: 'before' },
    )) as unknown as RawAccount | null;
    if (!after) {
      const current = await this.load(accountId);
      throw new ConflictError(`the account is ${current.status}: only ${from.join(' or ')} accounts can be ${action === 'unlock' ? 'unlocked' : `${action}d`}`);
    }
    const changes: Changes = { status: { before: after.status, after: to } };
    if (after.lockedUntil && action !== 'disable') changes.lockedUntil = { before: after.lockedUntil, after: null };
    if (pausedUntil) changes.secondFactorPausedUntil = { before: pausedUntil, after: null };
    const account = accountView({ ...after, status: to, ...(action !== 'disable' ? { lockedUntil: null } : {}), updatedAt: new Date() });
    return { account, changes, ...(action === 'unlock' ? { cleared: { lockout: true, secondFactorPause: pausedUntil !== null, signInThrottle: throttled } } : {}) };
  }

  /** Removes every second-factor credential; the person enrols again at their next sign-in. */
  async resetSecondFactor(accountId: string): Promise<{ credentialsRemoved: number; hadSecondFactor: boolean }> {
    const before = (await this.collection.findOneAndUpdate({ accountId }, { $unset: { mfa: '' }, $set: { updatedAt: new Date() } }, { returnDocument: 'before' })) as unknown as RawAccount | null;
    if (!before) throw new NotFoundError(`no account with id "${accountId}"`);
    const removed = await this.connection.collection(CREDENTIALS_COLLECTION).deleteMany({ accountId });
    return { credentialsRemoved: removed.deletedCount, hadSecondFactor: secondFactorEnrolled(before) };
  }

  /**
   * Ends every session and revokes every grant (with its tokens and codes) of the account, and forgets the
   * consent it gave apps (`consents`: consent records), so no app regains access without asking again.
   */
  async revokeSessionsAndGrants(accountId: string): Promise<{ sessions: number; grants: number; tokens: number; consents: number }> {
    await this.load(accountId);
    const counts = await removeArtifacts(this.connection, ACCOUNT_ARTIFACTS, 'accountId', accountId);
    const { Session: sessions = 0, Grant: grants = 0, [CONSENT_RECORDS]: consents = 0, ...rest } = counts;
    return { sessions, grants, tokens: Object.values(rest).reduce((sum, n) => sum + n, 0), consents };
  }
}
