/**
 * Stands in for `oidc-provider` when Gatehouse's src/oidc/provider.js (and only that module) imports
 * it in the bench's Gatehouse process: the same Provider, constructed with Gatehouse's own configuration
 * plus the bench resource server (bench-resource.ts), so a client_credentials token can be a JWT.
 * Everything else (errors, interactionPolicy, …) is oidc-provider's own. See provider-shim-hooks.mjs.
 */
import Provider, { type Configuration } from 'oidc-provider';
import { withBenchResourceServer } from './bench-resource.js';

export * from 'oidc-provider';

export default class GatehouseWithBenchResource extends Provider {
  constructor(issuer: string, configuration?: Configuration) {
    super(issuer, withBenchResourceServer(configuration ?? {}));
  }
}
