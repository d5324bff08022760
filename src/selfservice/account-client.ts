/**
 * The account area's own OIDC client: /account signs people in through the ordinary sign-in flow
 * (password, second factor or passkey) by sending them to /auth as this first-party public client,
 * asking for multi-factor (acr_values). It is a static oidc-provider client: it follows the issuer,
 * is never stored, and so never appears in (or can be changed through) the client administration.
 */
import type { ClientMetadata } from 'oidc-provider';

export const ACCOUNT_CLIENT_ID = 'gatehouse-account';

export function accountClientUrls(issuer: string) {
  return { page: `${issuer}/account`, redirectUri: `${issuer}/account/callback`, postLogoutRedirectUri: `${issuer}/account` };
}

export function accountClientMetadata(issuer: string): ClientMetadata {
  const urls = accountClientUrls(issuer);
  return {
    client_id: ACCOUNT_CLIENT_ID,
    client_name: 'Your Gatehouse account',
    redirect_uris: [urls.redirectUri],
    post_logout_redirect_uris: [urls.postLogoutRedirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    scope: 'openid',
    first_party: true,
  };
}
