/**
 * Account operations shared by the sign-in flow, the CLI and (later) the admin API.
 */
import type { Connection, Model } from 'mongoose';
import { z } from 'zod';
import { ConflictError, InputError, duplicateKeyField } from '../errors.js';
import { ROLES } from '../admin/permissions.js';
import { assertPasswordStrength, passwordProblems, WeakPasswordError, type PasswordHasher } from '../factors/password/password.js';
import type { MarketCatalogue } from '../policy/policy-store.js';
import { accountModel, type AccountDocument, type AccountFields } from './account.model.js';

const userIdRule = z
  .string()
  .trim()
  .min(3, 'must be at least 3 characters')
  .max(64, 'must be at most 64 characters')
  // No "@": a login containing "@" is looked up as an email, so a User ID must never look like one.
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'may contain letters, digits, ".", "_" and "-" and must start with a letter or digit');

export const newAccountInput = z.object({
  userId: userIdRule,
  email: z.email('must be a valid email address').max(254).optional(),
  name: z.string().trim().min(1, 'must not be empty').max(200),
  phone: z.string().regex(/^\+[1-9]\d{6,14}$/, 'must be in E.164 form, e.g. +14155550123').optional(),
  market: z.string().regex(/^[A-Za-z0-9_-]{1,16}$/, 'must be a short market code such as US or default').default('default'),
  roles: z.array(z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'must be a lower-case role name')).default([]),
  emailVerified: z.boolean().default(false),
  password: z.string().optional(),
});
export type NewAccountInput = z.input<typeof newAccountInput>;

/** The market of an account given none: the policy file's `default` policy, which may also be named. */
export const DEFAULT_MARKET = 'default';

/**
 * Checks a market and roles being set, and returns the market as stored: one the policy file names now
 * (any letter case, stored upper-cased as the file's codes are matched) or `default`. Each role must be
 * one of ROLES. A typo such as "USA" would otherwise put the account under the default policy and drop
 * its market's two-step verification unseen. What the account already holds (`held`) passes: only input
 * is checked, so an account whose market or role has since gone keeps it, and can be sent back unchanged.
 */
export function checkMarketAndRoles(input: { market?: string | undefined; roles?: readonly string[] | undefined }, marketCodes: readonly string[], held: { market?: string; roles?: readonly string[] } = {}): string | undefined {
  const problems: Record<string, string> = {};
  let market: string | undefined;
  if (input.market !== undefined) {
    const code = input.market.toUpperCase();
    if (code === DEFAULT_MARKET.toUpperCase()) market = DEFAULT_MARKET;
    else if (marketCodes.includes(code)) market = code;
    else if (held.market !== undefined && held.market.toUpperCase() === code) market = held.market;
    else problems.market = `"${input.market}" is not a market of the sign-in policy (config/policies.json): use one of ${[...marketCodes, DEFAULT_MARKET].join(', ')}`;
  }
  input.roles?.forEach((role, i) => {
    if (!(ROLES as readonly string[]).includes(role) && !held.roles?.includes(role)) problems[`roles.${i}`] = `"${role}" is not a known role: use ${ROLES.join(', ')}`;
  });
  if (Object.keys(problems).length > 0) {
    throw new InputError(`invalid account: ${Object.entries(problems).map(([field, message]) => `${field}: ${message}`).join('; ')}`, problems);
  }
  return market;
}

export class AccountService {
  readonly model: Model<AccountFields>;

  constructor(
    connection: Connection,
    private readonly hasher: PasswordHasher,
    /** The policy file (re-read when it changes): the markets an account may be put in. */
    private readonly markets: MarketCatalogue,
  ) {
    this.model = accountModel(connection);
  }

  /** checkMarketAndRoles against the policy file in force now. */
  checkMarketAndRoles(input: Parameters<typeof checkMarketAndRoles>[0], held?: Parameters<typeof checkMarketAndRoles>[2]): string | undefined {
    return checkMarketAndRoles(input, this.markets.marketCodes(), held);
  }

  async create(input: NewAccountInput): Promise<AccountDocument> {
    const parsed = newAccountInput.safeParse(input);
    if (!parsed.success) throw InputError.fromZod(parsed.error, 'invalid account');
    const { password, ...fields } = parsed.data;
    fields.market = this.checkMarketAndRoles(fields)!;

    let passwordHash: string | null = null;
    if (password !== undefined) {
      try {
        assertPasswordStrength(password, this.hasher.rules, { userId: fields.userId, email: fields.email });
      } catch (err) {
        if (err instanceof WeakPasswordError) throw new InputError(err.message, { password: err.message });
        throw err;
      }
      passwordHash = await this.hasher.hash(password);
    }

    try {
      return await this.model.create({
        ...fields,
        userIdLower: fields.userId.toLowerCase(),
        passwordHash,
        passwordChangedAt: passwordHash ? new Date() : null,
      });
    } catch (err) {
      const field = duplicateKeyField(err);
      if (field === false) throw err;
      if (field?.startsWith('email')) throw new ConflictError('an account with this email already exists', 'email');
      if (field?.startsWith('userId')) throw new ConflictError('an account with this User ID already exists', 'userId');
      throw new ConflictError('an account with this User ID or email already exists');
    }
  }

  /**
   * Sets a new password after checking it against the password rules (returned, not thrown, so a page
   * can list them). The caller revokes what a password change must revoke (see recovery/recovery.ts).
   */
  async setPassword(accountId: string, password: string): Promise<{ ok: true } | { ok: false; problems: string[] }> {
    const check = await this.checkNewPassword(accountId, password);
    if (!check.ok) return check;
    const passwordHash = await this.hasher.hash(password);
    await this.model.updateOne({ accountId }, { $set: { passwordHash, passwordChangedAt: new Date() } }).exec();
    return { ok: true };
  }

  /**
   * A code mailed to `email` was entered: the address is proven. Only while it is still the account's address
   * (one conditional update, so an address changed meanwhile is not marked).
   */
  async markEmailProven(accountId: string, email: string): Promise<void> {
    await this.model.updateOne({ accountId, emailLower: email.trim().toLowerCase(), emailVerified: { $ne: true } }, { $set: { emailVerified: true } }).exec();
  }

  /** The password rules applied to this account's new password (it must not contain the User ID, etc.). */
  async checkNewPassword(accountId: string, password: string): Promise<{ ok: true } | { ok: false; problems: string[] }> {
    const account = await this.findByAccountId(accountId);
    if (!account) return { ok: false, problems: ['The account no longer exists.'] };
    const problems = passwordProblems(password, this.hasher.rules, { userId: account.userId, email: account.email });
    return problems.length > 0 ? { ok: false, problems } : { ok: true };
  }

  /** Looks up the sign-in identifier: an email when it contains "@", otherwise a User ID. */
  findByLogin(identifier: string): Promise<AccountDocument | null> {
    const normalized = identifier.trim().toLowerCase();
    if (!normalized || normalized.length > 254) return Promise.resolve(null);
    return this.model.findOne(normalized.includes('@') ? { emailLower: normalized } : { userIdLower: normalized }).exec();
  }

  findByAccountId(accountId: string): Promise<AccountDocument | null> {
    return this.model.findOne({ accountId }).exec();
  }

  /**
   * Changes the account's 2FA enrolment state atomically. Accounts made before `mfa` existed hold null
   * there, which a dotted update cannot extend, so that is replaced with an empty state first.
   */
  async updateMfa(accountId: string, change: { set?: Partial<Record<'enrolledAt' | 'defaultMethod', unknown>>; incDeferrals?: boolean }): Promise<void> {
    await this.model.updateOne({ accountId, $or: [{ mfa: null }, { mfa: { $exists: false } }] }, { $set: { mfa: { enrolledAt: null, defaultMethod: null, deferrals: 0 } } }).exec();
    const update: Record<string, unknown> = {};
    if (change.set) update.$set = Object.fromEntries(Object.entries(change.set).map(([k, v]) => [`mfa.${k}`, v]));
    if (change.incDeferrals) update.$inc = { 'mfa.deferrals': 1 };
    await this.model.updateOne({ accountId }, update).exec();
  }

  async list(options: { limit?: number; skip?: number } = {}): Promise<AccountDocument[]> {
    return this.model
      .find({})
      .sort({ userIdLower: 1 })
      .skip(options.skip ?? 0)
      .limit(Math.min(options.limit ?? 100, 1000))
      .exec();
  }
}
