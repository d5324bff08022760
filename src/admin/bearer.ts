/**
 * Authenticates admin API callers with access tokens issued by this Gatehouse, looked up through
 * oidc-provider's own models (never a hand-rolled token check):
 *   - a person's token (AccessToken): the grant, the client and the account must still exist, the
 *     account must be active, and each admin scope counts only while the account holds its role;
 *   - a machine's token (ClientCredentials): each admin scope counts only while the client is still
 *     registered with it.
 * So removing a role, disabling an account or narrowing a client takes effect on the next request.
 */
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { AccountService } from '../accounts/accounts.js';
import { CLIENTS_COLLECTION, type ClientDocument } from '../oidc/adapter.js';
import { invalidRequest, invalidToken, missingToken } from './errors.js';
import { accountMayHoldScope, isAdminScope, permissionsOf, type AdminScope, type Permission } from './permissions.js';

export interface AdminPrincipal {
  actor: { kind: 'account' | 'client'; id: string };
  /** The client the token was issued to. */
  clientId: string;
  /** Admin scopes the token carries that the caller still holds. */
  scopes: AdminScope[];
  permissions: ReadonlySet<Permission>;
  /** The account's roles, for a person. */
  roles?: string[];
}

/** RFC 6750 §2.1: `Bearer` followed by a b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const MAX_TOKEN_LENGTH = 4096;

interface TokenLike {
  kind: string;
  clientId: string;
  accountId?: string;
  grantId?: string;
  scope?: string;
  /** Set on tokens issued for a configured API (resourceServers): those are that API's, not this one's. */
  aud?: unknown;
  isExpired: boolean;
  isSenderConstrained(): boolean;
}

function tokenFrom(ctx: Context): string {
  if (ctx.query.access_token !== undefined) {
    throw invalidRequest('Send the access token in the Authorization header, not in the URL.');
  }
  const header = ctx.get('authorization');
  if (!header) throw missingToken();
  const match = BEARER.exec(header);
  if (!match || header.length > MAX_TOKEN_LENGTH) throw invalidRequest('The Authorization header must be "Bearer <access token>".');
  return match[1]!;
}

export function createAuthenticator(provider: Provider, accounts: AccountService) {
  const clients = accounts.model.db.collection<ClientDocument>(CLIENTS_COLLECTION);
  const registeredAdminScopes = async (clientId: string): Promise<Set<string> | undefined> => {
    // Straight from the database, not oidc-provider's (cached) client: a scope taken away applies at once.
    const doc = await clients.findOne({ _id: clientId }, { projection: { 'metadata.scope': 1 } });
    if (!doc) return undefined;
    return new Set(String(doc.metadata?.scope ?? '').split(' ').filter(isAdminScope));
  };

  return async function authenticate(ctx: Context): Promise<AdminPrincipal> {
    const value = tokenFrom(ctx);
    const token = ((await provider.AccessToken.find(value)) ?? (await provider.ClientCredentials.find(value))) as unknown as TokenLike | undefined;
    if (!token || token.isExpired) throw invalidToken('The access token is invalid, expired or revoked.');
    // A DPoP- or certificate-bound token needs its proof checked; this API accepts plain bearer tokens only.
    if (token.isSenderConstrained()) throw invalidToken('Sender-constrained tokens are not accepted by this API.');
    if (token.aud !== undefined) throw invalidToken('This access token was issued for another API.');

    const registered = await registeredAdminScopes(token.clientId);
    if (!registered) throw invalidToken('The client this token was issued to no longer exists.');
    const tokenScopes = String(token.scope ?? '')
      .split(' ')
      .filter((scope): scope is AdminScope => isAdminScope(scope) && registered.has(scope));

    if (token.kind === 'ClientCredentials') {
      return { actor: { kind: 'client', id: token.clientId }, clientId: token.clientId, scopes: tokenScopes, permissions: permissionsOf(tokenScopes) };
    }

    const grant = token.grantId ? await provider.Grant.find(token.grantId) : undefined;
    if (!grant || grant.clientId !== token.clientId || grant.accountId !== token.accountId) {
      throw invalidToken('The grant behind this token has been revoked.');
    }
    const account = token.accountId ? await accounts.findByAccountId(token.accountId) : null;
    if (!account || account.status !== 'active') throw invalidToken('The account this token was issued to is not active.');
    const roles = [...account.roles];
    const scopes = tokenScopes.filter((scope) => accountMayHoldScope(roles, scope));
    return { actor: { kind: 'account', id: account.accountId }, clientId: token.clientId, scopes, permissions: permissionsOf(scopes), roles };
  };
}

export type Authenticate = ReturnType<typeof createAuthenticator>;
