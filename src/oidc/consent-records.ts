/**
 * Consent records: what a person allowed a third-party app, kept apart from oidc-provider's Grants.
 *
 * A Grant belongs to a sign-in session: oidc-provider revokes it (and its tokens) when that session signs
 * out. Consent is the person's decision and outlives sign-out: it ends only when the person removes the
 * app in /account, an administrator or a password reset revokes the account's grants, the account is
 * disabled, the app revokes its own refresh token, or the client is deleted. One record per (account,
 * client), holding the union of everything consented; it expires like a grant (ttl.grantSeconds) after
 * its last use, and every use pushes that back. loadExistingGrant (provider.ts) writes it after the
 * consent step and recreates a Grant from it when the session has none.
 */
import type { Connection } from 'mongoose';
import type { Grant } from 'oidc-provider';
import { partitionScopesForAccount } from '../admin/permissions.js';

export const CONSENT_COLLECTION = 'consent_records';

export interface ResourceScope {
  resource: string;
  scope: string;
}

export interface ConsentRecord {
  accountId: string;
  clientId: string;
  /** OpenID scopes consented (e.g. openid, profile, offline_access). */
  scopes: string[];
  /** Individual claims consented (the `claims` request parameter). */
  claims: string[];
  /** API (resource server) scopes consented, one entry per scope. */
  resourceScopes: ResourceScope[];
  /** Scopes the consent step declined for the person (admin scopes without the role): never asked again. */
  rejectedScopes: string[];
  firstGrantedAt: Date;
  lastGrantedAt: Date;
  expiresAt: Date;
}

const words = (text: string | undefined): string[] => (text ?? '').split(' ').filter(Boolean);

/** What a grant holds, as oidc-provider reads it (its rejected scopes taken out). */
function contentOf(grant: Grant) {
  const scopes = words(grant.getOIDCScope());
  const resourceScopes = Object.keys(grant.resources ?? {}).flatMap((resource) => words(grant.getResourceScope(resource)).map((scope) => ({ resource, scope })));
  return { scopes, claims: [...grant.getOIDCClaims()], resourceScopes, rejectedScopes: words(grant.getRejectedOIDCScope()).filter((s) => !scopes.includes(s)) };
}

export async function ensureConsentRecordIndexes(connection: Connection): Promise<void> {
  await connection.collection(CONSENT_COLLECTION).createIndexes([
    { key: { accountId: 1, clientId: 1 }, name: 'account_client', unique: true },
    { key: { clientId: 1 }, name: 'clientId' },
    { key: { expiresAt: 1 }, name: 'expiresAt_ttl', expireAfterSeconds: 0 },
  ]);
}

function isDuplicateKey(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 11000;
}

export class ConsentRecords {
  constructor(
    private readonly connection: Connection,
    /** How long a record lives after its last use: the grants' TTL. */
    private readonly ttlSeconds = 0,
  ) {}

  private get collection() {
    return this.connection.collection<ConsentRecord>(CONSENT_COLLECTION);
  }

  /**
   * Adds what `grant` holds to the record of its account and client (created if missing) and pushes its
   * expiry back. `consentedNow`: the consent step has just added to the grant, so this is a new "granted"
   * time; otherwise the grant is only being used.
   */
  async remember(grant: Grant, consentedNow: boolean, now = new Date()): Promise<void> {
    const accountId = grant.accountId!;
    const clientId = grant.clientId!;
    const content = contentOf(grant);
    const issued = typeof grant.iat === 'number' ? new Date(grant.iat * 1000) : now;
    const update = {
      $addToSet: {
        scopes: { $each: content.scopes },
        claims: { $each: content.claims },
        resourceScopes: { $each: content.resourceScopes },
        rejectedScopes: { $each: content.rejectedScopes },
      },
      $set: { expiresAt: new Date(now.getTime() + this.ttlSeconds * 1000), ...(consentedNow ? { lastGrantedAt: now } : {}) },
      $setOnInsert: consentedNow ? { firstGrantedAt: now } : { firstGrantedAt: issued, lastGrantedAt: issued },
    };
    // A grant in use extends a live record in one update (the common case).
    if (!consentedNow && (await this.collection.updateOne({ accountId, clientId, expiresAt: { $gt: now } }, update)).matchedCount > 0) return;
    // An expired record not yet swept must not lend its old consent to a new one, nor be extended.
    await this.collection.deleteOne({ accountId, clientId, expiresAt: { $lte: now } });
    // Two first consents at once: one insert wins the unique index, the other then updates it.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.collection.updateOne({ accountId, clientId }, update, { upsert: true });
        return;
      } catch (err) {
        if (!isDuplicateKey(err) || attempt > 0) throw err;
      }
    }
  }

  /** The live record of this account for this client, if any. */
  async find(accountId: string, clientId: string, now = new Date()): Promise<ConsentRecord | null> {
    return this.collection.findOne({ accountId, clientId, expiresAt: { $gt: now } }, { projection: { _id: 0 } });
  }

  /** The account's live records. */
  async forAccount(accountId: string, now = new Date()): Promise<ConsentRecord[]> {
    return this.collection.find({ accountId, expiresAt: { $gt: now } }, { projection: { _id: 0 } }).toArray();
  }

  /** Pushes a live record's expiry back (it was used to recreate a grant). */
  async touch(accountId: string, clientId: string, now = new Date()): Promise<void> {
    await this.collection.updateOne({ accountId, clientId, expiresAt: { $gt: now } }, { $set: { expiresAt: new Date(now.getTime() + this.ttlSeconds * 1000) } });
  }

  /** Consent withdrawn for one app: true when a record (live or not yet swept) was deleted. */
  async forget(accountId: string, clientId: string): Promise<boolean> {
    return (await this.collection.deleteOne({ accountId, clientId })).deletedCount === 1;
  }

  async forgetAccount(accountId: string): Promise<number> {
    return (await this.collection.deleteMany({ accountId })).deletedCount;
  }

  async forgetClient(clientId: string): Promise<number> {
    return (await this.collection.deleteMany({ clientId })).deletedCount;
  }
}

/**
 * Puts a record's consent into a new grant: exactly what was consented, except admin scopes the account's
 * roles no longer allow (declined, as the consent step declines them). oidc-provider then asks only for
 * what the request wants beyond it.
 */
export function restoreConsent(grant: Grant, record: ConsentRecord, roles: readonly string[]): void {
  const { granted, rejected } = partitionScopesForAccount(record.scopes, roles);
  const declined = [...new Set([...rejected, ...record.rejectedScopes.filter((s) => !granted.includes(s))])];
  if (granted.length) grant.addOIDCScope(granted.join(' '));
  if (declined.length) grant.rejectOIDCScope(declined.join(' '));
  if (record.claims.length) grant.addOIDCClaims(record.claims);
  const byResource = new Map<string, string[]>();
  for (const { resource, scope } of record.resourceScopes) {
    if (partitionScopesForAccount([scope], roles).granted.length) byResource.set(resource, [...(byResource.get(resource) ?? []), scope]);
  }
  for (const [resource, scopes] of byResource) grant.addResourceScope(resource, scopes.join(' '));
}
