/**
 * The APIs (resource servers) clients may ask access tokens for, from `resourceServers` in the
 * configuration. A client names one with RFC 8707's `resource` parameter; the token is then issued for
 * that API alone (`aud`), with only that API's scopes, in the API's format: an RFC 9068 JWT signed with
 * Gatehouse's key (the API verifies it against /jwks, no call back to Gatehouse, and nothing is stored),
 * or an opaque token the API introspects. Without a `resource`, tokens are opaque and for userinfo, as before.
 */
import { errors, type Configuration, type ResourceServer } from 'oidc-provider';
import type { Config } from '../config.js';

type ResourceIndicators = NonNullable<NonNullable<Configuration['features']>['resourceIndicators']>;

export function resourceIndicators(servers: Config['resourceServers']): ResourceIndicators {
  const configured = new Map(Object.entries(servers));
  return {
    enabled: true,
    async getResourceServerInfo(_ctx, indicator, client) {
      const server = configured.get(indicator);
      // The same answer for an API that does not exist and one this client may not use.
      if (!server || (server.clients !== '*' && !server.clients.includes(client.clientId))) {
        throw new errors.InvalidTarget('the resource is not one this client may request tokens for');
      }
      const info: ResourceServer = {
        scope: server.scopes.join(' '),
        audience: indicator,
        accessTokenFormat: server.accessTokenFormat,
        ...(server.accessTokenSeconds !== null ? { accessTokenTTL: server.accessTokenSeconds } : {}),
        ...(server.accessTokenFormat === 'jwt' ? { jwt: { sign: { alg: server.signingAlg } } } : {}),
      };
      return info;
    },
  };
}

/**
 * The API scopes a first-party client is granted without a consent page: of the scopes the account may be
 * granted, the ones each requested API offers.
 */
export function resourceScopesRequested(resourceServers: Record<string, ResourceServer> | undefined, allowed: string[]): Array<[indicator: string, scopes: string]> {
  const out: Array<[string, string]> = [];
  for (const [indicator, server] of Object.entries(resourceServers ?? {})) {
    const offered = new Set(String(server.scope ?? '').split(' '));
    const wanted = allowed.filter((scope) => offered.has(scope));
    if (wanted.length) out.push([indicator, wanted.join(' ')]);
  }
  return out;
}
