/**
 * oidc-provider's configuration: storage, keys, claims, features, TTLs, cookies and the pages it
 * renders itself (errors, logout). The sign-in and consent pages are ours (src/interactions/).
 */
import Provider, { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Connection } from 'mongoose';
import type { Config } from '../config.js';
import type { SecretBox } from '../crypto/secret-box.js';
import type { AccountService } from '../accounts/accounts.js';
import type { Logger } from '../logger.js';
import { resourceIndicators, resourceScopesRequested } from './resource-servers.js';
import { renderView } from '../http/render.js';
import { createAdapterFactory, guardDatabase } from './adapter.js';
import { createFindAccount, RequestAccounts } from './claims.js';
import { buildInteractionPolicy } from './interaction-policy.js';
import type { ProviderKeys } from './keys.js';
import { ACR, SCOPE_CLAIMS } from './scopes.js';
import { ADMIN_SCOPES, partitionScopesForAccount } from '../admin/permissions.js';
import { registrationFeatures } from './registration.js';
import { ConsentRecords, restoreConsent } from './consent-records.js';
import { accountClientMetadata } from '../selfservice/account-client.js';

export interface ProviderDeps {
  config: Config;
  connection: Connection;
  secretBox: SecretBox;
  keys: ProviderKeys;
  accounts: AccountService;
  log: Logger;
}

/** Marks first-party clients, which skip the consent page. Only an administrator may set it. */
export const FIRST_PARTY = 'first_party';

/** Error pages say what happened in words, never with a stack trace. */
const FRIENDLY_ERRORS: Record<string, string> = {
  invalid_client: 'This application is not registered with Gatehouse, or its registration has been removed.',
  invalid_redirect_uri: 'The application asked to return to an address it has not registered.',
  invalid_request: 'The sign-in request was not valid.',
  session_not_found: 'Your sign-in session has expired or was not found.',
  temporarily_unavailable: 'Sign-in is temporarily unavailable. Please try again in a moment.',
  server_error: 'Something went wrong on our side.',
};

export function buildProvider(deps: ProviderDeps): Provider {
  const { config, connection, secretBox, keys, accounts, log } = deps;
  const secureCookies = config.issuer.startsWith('https:');
  const cookieOptions = { httpOnly: true, sameSite: 'lax' as const, secure: secureCookies, overwrite: true };
  // One account read per request, shared by findAccount and loadExistingGrant.
  const requestAccounts = new RequestAccounts(accounts);
  const consents = new ConsentRecords(connection, config.ttl.grantSeconds);

  const configuration: Configuration = {
    adapter: createAdapterFactory(connection, secretBox),
    // The account area's sign-in client (src/selfservice/account-client.ts); every other client is stored.
    clients: [accountClientMetadata(config.issuer)],
    findAccount: createFindAccount(requestAccounts),
    jwks: keys.jwks as Configuration['jwks'],
    cookies: {
      keys: keys.cookieKeys,
      long: { ...cookieOptions },
      short: { ...cookieOptions },
      names: { session: 'gh_session', interaction: 'gh_interaction', resume: 'gh_resume' },
    },
    claims: {
      acr: null,
      amr: null,
      auth_time: null,
      sid: null,
      // acr and amr ride on the openid scope so every ID token says how the user authenticated.
      openid: [...SCOPE_CLAIMS.openid, 'acr', 'amr'],
      profile: [...SCOPE_CLAIMS.profile],
      email: [...SCOPE_CLAIMS.email],
      phone: [...SCOPE_CLAIMS.phone],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'phone', ...ADMIN_SCOPES],
    responseTypes: ['code'],
    acrValues: [ACR.password, ACR.multiFactor],
    clientDefaults: {
      // A client registered without a scope list may ask for every scope except the admin ones, which
      // a client gets only by being registered with them (oidc-provider otherwise allows any scope).
      scope: 'openid offline_access profile email phone',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
      require_auth_time: true,
    },
    extraClientMetadata: {
      properties: [FIRST_PARTY],
      validator(ctx, key, value) {
        if (key !== FIRST_PARTY) return;
        if (value !== undefined && typeof value !== 'boolean') {
          throw new errors.InvalidClientMetadata(`${FIRST_PARTY} must be a boolean`);
        }
        // Self-registered clients must not grant themselves consent-free access.
        if (value === true && ctx && (ctx as KoaContextWithOIDC).oidc?.route?.startsWith('registration')) {
          throw new errors.InvalidClientMetadata(`${FIRST_PARTY} can only be set by an administrator`);
        }
      },
    },
    features: {
      devInteractions: { enabled: false },
      ...registrationFeatures(connection),
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: resourceIndicators(config.resourceServers),
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = await renderView('logout', { title: 'Sign out', form, clientName: ctx.oidc.client?.clientName ?? null });
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = await renderView('logged-out', { title: 'Signed out', clientName: ctx.oidc.client?.clientName ?? null });
        },
      },
    },
    pkce: {
      // Every authorization-code client proves possession of its code with PKCE (S256).
      required: () => true,
    },
    interactions: {
      policy: buildInteractionPolicy(),
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    async loadExistingGrant(ctx) {
      const client = ctx.oidc.client!;
      const accountId = ctx.oidc.session!.accountId!;
      const thirdParty = (client as unknown as Record<string, unknown>)[FIRST_PARTY] !== true;
      const consentedNow = Boolean(ctx.oidc.result?.consent?.grantId);
      const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session!.grantIdFor(client.clientId);
      if (grantId) {
        const grant = await ctx.oidc.provider.Grant.find(grantId);
        if (grant) {
          // The consent step has just added to it (or it is in use): the consent record follows it.
          if (thirdParty) await guardDatabase(() => consents.remember(grant, consentedNow));
          return grant;
        }
      }
      if (thirdParty) {
        // Consent given earlier (before a sign-out, in another browser, or a session that has since expired)
        // is remembered by its consent record: a new grant for this session holds exactly that, and
        // oidc-provider asks only for what it lacks.
        const record = await guardDatabase(() => consents.find(accountId, client.clientId));
        if (record) {
          const roles = (await guardDatabase(() => requestAccounts.find(ctx, accountId)))?.roles ?? [];
          const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId });
          restoreConsent(grant, record, roles);
          await grant.save();
          await guardDatabase(() => consents.touch(accountId, client.clientId));
          return grant;
        }
        // No record, no consent: a live grant of another session is not consent for this one (it may have
        // been made while the client was first-party, or its app may have given up this account's access).
        return undefined;
      }
      // First-party clients: everything they ask for is granted without a consent page.
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId });
      // Admin scopes only for the matching roles; the others are recorded as declined, not asked again.
      const requested = ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes] : ['openid'];
      const roles = (await guardDatabase(() => requestAccounts.find(ctx, accountId)))?.roles ?? [];
      const { granted, rejected } = partitionScopesForAccount(requested, roles);
      grant.addOIDCScope(granted.join(' '));
      if (rejected.length) grant.rejectOIDCScope(rejected.join(' '));
      const claims = ctx.oidc.requestParamClaims;
      if (claims) grant.addOIDCClaims([...claims]);
      for (const [indicator, scopes] of resourceScopesRequested(ctx.oidc.resourceServers, granted)) grant.addResourceScope(indicator, scopes);
      await grant.save();
      return grant;
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.ttl.accessTokenSeconds,
      AuthorizationCode: 60,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.ttl.clientCredentialsSeconds,
      IdToken: config.ttl.idTokenSeconds,
      RefreshToken: config.ttl.refreshTokenSeconds,
      Interaction: config.ttl.interactionSeconds,
      Session: config.ttl.sessionSeconds,
      Grant: config.ttl.grantSeconds,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
    },
    async renderError(ctx, out, error) {
      const code = String(out.error ?? 'server_error');
      if (code === 'server_error') log.error({ err: error }, 'oidc-provider server error');
      ctx.type = 'html';
      ctx.body = await renderView('error', {
        title: 'Sign-in problem',
        heading: code === 'temporarily_unavailable' ? 'Temporarily unavailable' : 'We could not complete this sign-in',
        message: FRIENDLY_ERRORS[code] ?? 'The request could not be completed.',
        detail: code === 'server_error' ? null : (out.error_description ?? null),
        code,
      });
    },
  };

  const provider = new Provider(config.issuer, configuration);
  provider.proxy = config.trustProxy;
  provider.on('server_error', (_ctx: unknown, err: Error) => log.error({ err }, 'oidc-provider server_error'));
  // An app revoking its own refresh token gives up the access it was given, consent included (as Google and
  // Keycloak treat it). Sign-out and a replayed code or refresh token revoke grants too, but not consent.
  provider.on('grant.revoked', (ctx: KoaContextWithOIDC) => {
    if (ctx.oidc.route !== 'revocation') return;
    const token = ctx.oidc.entities.RefreshToken;
    const clientId = ctx.oidc.client?.clientId;
    if (!token?.accountId || !clientId || token.clientId !== clientId) return;
    consents.forget(token.accountId, clientId).catch((err: unknown) => log.error({ err, clientId }, 'could not delete the consent record of a revoked grant'));
  });
  return provider;
}
