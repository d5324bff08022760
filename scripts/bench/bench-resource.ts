/**
 * JWT access tokens for client_credentials, on the baseline. In oidc-provider 9 the token format is a
 * property of the resource server the token is for: `features.resourceIndicators` (enabled by default)
 * asks `getResourceServerInfo(ctx, resource, client)`, and an answer with `accessTokenFormat: 'jwt'` makes
 * the token a signed JWT (ES256 here) that is not stored. Without a `resource` parameter the token is
 * opaque and stored through the adapter.
 *
 * The baseline gets exactly this one resource server here; Gatehouse gets the same API through its own
 * configuration (`resourceServers`, src/oidc/resource-servers.ts), set by gatehouse-child.ts.
 */
import { errors, type Configuration, type ResourceServer } from 'oidc-provider';
import { BENCH_RESOURCE } from './fixtures.js';

export const BENCH_RESOURCE_SERVER: ResourceServer = {
  scope: BENCH_RESOURCE.scope,
  audience: BENCH_RESOURCE.indicator,
  accessTokenTTL: BENCH_RESOURCE.accessTokenTTL,
  accessTokenFormat: 'jwt',
  jwt: { sign: { alg: 'ES256' } },
};

type ResourceIndicators = NonNullable<NonNullable<Configuration['features']>['resourceIndicators']>;

export function withBenchResourceServer(configuration: Configuration): Configuration {
  const features = configuration.features ?? {};
  const existing: ResourceIndicators = features.resourceIndicators ?? {};
  const fallback = existing.getResourceServerInfo;
  const resourceIndicators: ResourceIndicators = {
    ...existing,
    enabled: true,
    async getResourceServerInfo(ctx, resourceIndicator, client) {
      if (resourceIndicator === BENCH_RESOURCE.indicator) return BENCH_RESOURCE_SERVER;
      if (fallback) return fallback(ctx, resourceIndicator, client);
      throw new errors.InvalidTarget();
    },
  };
  return { ...configuration, features: { ...features, resourceIndicators } };
}
