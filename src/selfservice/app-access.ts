/**
 * "Apps with access" in /account: the applications (clients) an account gave consent to, and withdrawing
 * that consent. Consent lives in the consent records (src/oidc/consent-records.ts), which outlive sign-out;
 * live grants are read too (a grant from before consent records existed has none).
 *
 * First-party clients (the account area's own `gatehouse-account`, and any client marked `first_party`)
 * are left out and cannot be removed here: their access comes with the account, and loadExistingGrant
 * (src/oidc/provider.ts) grants it again, without asking, at their next sign-in, so there is nothing the
 * person could withdraw.
 */
import type { Connection } from 'mongoose';
import type Provider from 'oidc-provider';
import { DatabaseUnavailableError, guardDatabase } from '../oidc/adapter.js';
import { FIRST_PARTY } from '../oidc/provider.js';
import { ConsentRecords, type ConsentRecord } from '../oidc/consent-records.js';
import { findArtifacts, type FoundArtifact } from '../oidc/revocation.js';
import { CLAIM_DESCRIPTIONS, SCOPE_DESCRIPTIONS } from '../oidc/scopes.js';
import { ACCOUNT_CLIENT_ID } from './account-client.js';

export interface AppWithAccess {
  clientId: string;
  /** The client's registered name, or its id when it has none (or is no longer registered). */
  name: string;
  /** What it was allowed, in the consent page's words. */
  permissions: string[];
  /** When consent was last given (its record's, or the newest grant's iat), when known. */
  grantedAt: Date | null;
}

interface Permissions {
  scope?: string;
  claims?: string[];
}

interface GrantPayload {
  clientId?: unknown;
  iat?: unknown;
  openid?: Permissions;
  rejected?: { openid?: Permissions };
  resources?: Record<string, unknown>;
}

const words = (text: unknown): string[] => (typeof text === 'string' ? text.split(' ').filter(Boolean) : []);

/** What a grant allows, as oidc-provider's Grant reads it (rejected scopes removed, except openid). */
function describe(grant: GrantPayload): { scopes: string[]; claims: string[]; resources: [string, string[]][] } {
  const rejectedScopes = new Set(words(grant.rejected?.openid?.scope).filter((s) => s !== 'openid'));
  const rejectedClaims = new Set(grant.rejected?.openid?.claims ?? []);
  return {
    scopes: words(grant.openid?.scope).filter((s) => !rejectedScopes.has(s)),
    claims: (Array.isArray(grant.openid?.claims) ? grant.openid.claims : []).filter((c) => typeof c === 'string' && !rejectedClaims.has(c)),
    resources: Object.entries(grant.resources ?? {}).map(([resource, scope]) => [resource, words(scope)] as [string, string[]]).filter(([, list]) => list.length > 0),
  };
}

/** A consent record in describe()'s terms. */
function describeRecord(record: ConsentRecord): ReturnType<typeof describe> {
  const resources = new Map<string, string[]>();
  for (const { resource, scope } of record.resourceScopes) resources.set(resource, [...(resources.get(resource) ?? []), scope]);
  return { scopes: record.scopes, claims: record.claims, resources: [...resources] };
}

/** The consent page's phrasing (src/interactions/flow.ts consentView), for everything across the record and grants. */
function permissionsOf(consents: ReturnType<typeof describe>[]): string[] {
  const scopes = new Set<string>();
  const claims = new Set<string>();
  const resources = new Map<string, Set<string>>();
  for (const what of consents) {
    what.scopes.forEach((s) => scopes.add(s));
    what.claims.forEach((c) => claims.add(c));
    for (const [resource, list] of what.resources) list.forEach((s) => (resources.get(resource) ?? resources.set(resource, new Set()).get(resource)!).add(s));
  }
  return [
    ...[...scopes].map((scope) => SCOPE_DESCRIPTIONS[scope] ?? `Use the "${scope}" permission`),
    ...(claims.size ? [`See ${[...claims].map((c) => CLAIM_DESCRIPTIONS[c] ?? c).join(', ')}`] : []),
    ...[...resources].map(([resource, list]) => `Use ${resource} with the permissions ${[...list].join(', ')}`),
  ];
}

const isLive = (grant: FoundArtifact, now: number) => !grant.expiresAt || grant.expiresAt.getTime() > now;

/**
 * Deletes a grant and every token and code issued under it. The grant first: oidc-provider reads it on every
 * use of a token or code, so from then on nothing issued under it is honoured, even while the tokens
 * themselves are being deleted.
 */
export async function revokeGrant(provider: Provider, grantId: string): Promise<void> {
  await provider.Grant.adapter.destroy(grantId);
  await Promise.all(
    [provider.AccessToken, provider.RefreshToken, provider.AuthorizationCode, provider.DeviceCode, provider.BackchannelAuthenticationRequest].map((model) => model.adapter.revokeByGrantId(grantId)),
  );
}

export class AppAccess {
  private readonly consents: ConsentRecords;

  constructor(
    private readonly provider: Provider,
    private readonly connection: Connection,
  ) {
    this.consents = new ConsentRecords(connection);
  }

  /** The account's grants, newest record first; expired ones too (their tokens are tidied with them on removal). */
  private grantsOf(accountId: string): Promise<FoundArtifact[]> {
    return guardDatabase(() => findArtifacts(this.connection, 'Grant', 'accountId', accountId));
  }

  /** The registered client, or undefined when it is gone or its stored metadata no longer loads. */
  private async client(clientId: string) {
    try {
      return await this.provider.Client.find(clientId);
    } catch (err) {
      if (err instanceof DatabaseUnavailableError) throw err;
      return undefined;
    }
  }

  private async isFirstParty(clientId: string): Promise<boolean> {
    if (clientId === ACCOUNT_CLIENT_ID) return true;
    const client = await this.client(clientId);
    return (client as unknown as Record<string, unknown> | undefined)?.[FIRST_PARTY] === true;
  }

  /** Third-party apps with consent (a consent record or a live grant), by name. */
  async list(accountId: string): Promise<AppWithAccess[]> {
    const now = Date.now();
    const byClient = new Map<string, { record?: ConsentRecord; grants: GrantPayload[] }>();
    const entry = (clientId: string) => byClient.get(clientId) ?? byClient.set(clientId, { grants: [] }).get(clientId)!;
    for (const record of await guardDatabase(() => this.consents.forAccount(accountId))) entry(record.clientId).record = record;
    for (const grant of await this.grantsOf(accountId)) {
      const payload = grant.payload as GrantPayload;
      if (!isLive(grant, now) || typeof payload.clientId !== 'string') continue;
      entry(payload.clientId).grants.push(payload);
    }
    const apps: AppWithAccess[] = [];
    for (const [clientId, { record, grants }] of byClient) {
      if (clientId === ACCOUNT_CLIENT_ID) continue;
      const client = await this.client(clientId);
      // A deleted client's consent goes with it (revocation.ts); one still listed here is on its way out.
      if (!client && !grants.length) continue;
      if ((client as unknown as Record<string, unknown> | undefined)?.[FIRST_PARTY] === true) continue;
      const issued = [...grants.map((g) => g.iat).filter((iat): iat is number => typeof iat === 'number').map((iat) => iat * 1000), ...(record ? [record.lastGrantedAt.getTime()] : [])];
      apps.push({
        clientId,
        name: client?.clientName ?? clientId,
        permissions: permissionsOf([...(record ? [describeRecord(record)] : []), ...grants.map(describe)]),
        grantedAt: issued.length ? new Date(Math.max(...issued)) : null,
      });
    }
    return apps.sort((a, b) => a.name.localeCompare(b.name) || a.clientId.localeCompare(b.clientId));
  }

  /**
   * Withdraws the account's consent for a third-party client: deletes its consent record, its grants for that
   * client and every token and code issued under them. Returns the grants removed and whether a consent record
   * was, or null when the client has neither a consent record nor a live grant of this account (unknown,
   * already removed, or first-party).
   */
  async remove(accountId: string, clientId: string): Promise<{ grantIds: string[]; consentRecord: boolean } | null> {
    if (await this.isFirstParty(clientId)) return null;
    const now = Date.now();
    // The record first, so no sign-in in between recreates a grant from it.
    const consentRecord = await guardDatabase(() => this.consents.forget(accountId, clientId));
    const grants = (await this.grantsOf(accountId)).filter((g) => g.payload.clientId === clientId);
    if (!consentRecord && !grants.some((g) => isLive(g, now))) return null;
    for (const { _id: grantId } of grants) await revokeGrant(this.provider, grantId);
    // And again: a sign-in that used one of those grants before it went may have written the record back
    // (loadExistingGrant records a grant in use), and would otherwise restore the consent just withdrawn.
    const rewritten = await guardDatabase(() => this.consents.forget(accountId, clientId));
    return { grantIds: grants.map((g) => g._id), consentRecord: consentRecord || rewritten };
  }
}
