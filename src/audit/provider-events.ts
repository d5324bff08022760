/**
 * Audit entries for what oidc-provider does on its own endpoints: sign-out (with how many apps' sign-ins it
 * ended), grants revoked (by the app revoking its token, or a replayed code or refresh token; a sign-out's
 * are not, as the consent stays), tokens revoked at the revocation endpoint, and dynamic
 * client registration. Only identifiers are recorded: a token's value is its id, so never that.
 */
import Provider, { type KoaContextWithOIDC } from 'oidc-provider';
import type { AuditEvent, AuditLog } from './audit.js';

type Facts = Pick<AuditEvent, 'ip' | 'userAgent' | 'requestId' | 'clientId'>;

function requestFacts(ctx: KoaContextWithOIDC | undefined): Facts {
  if (!ctx) return {};
  const clientId = ctx.oidc?.client?.clientId;
  const userAgent = ctx.get('user-agent').slice(0, 256);
  return {
    ip: ctx.ip,
    ...(userAgent ? { userAgent } : {}),
    ...(typeof ctx.state?.requestId === 'string' ? { requestId: ctx.state.requestId } : {}),
    ...(clientId ? { clientId } : {}),
  };
}

interface RevocableToken {
  kind: string;
  accountId?: string;
  grantId?: string;
}

/** Where oidc-provider revokes a session's grants on sign-out (the consent behind them stays: consent-records.ts). */
const SIGN_OUT_ROUTES = new Set(['end_session', 'end_session_confirm']);

export function auditProviderEvents(provider: Provider, audit: AuditLog): void {
  provider.on('end_session.success', (ctx: KoaContextWithOIDC) => {
    const session = ctx.oidc.session;
    const accountId = session?.accountId;
    // "Sign out of every app" ends each app's sign-in in the session; otherwise only the requesting app's.
    const appSessionsEnded = ctx.oidc.params?.logout ? Object.keys(session?.authorizations ?? {}).length : ctx.oidc.entities.Client ? 1 : 0;
    void audit.record({
      type: 'signout',
      outcome: 'success',
      actor: accountId ? { kind: 'account', id: accountId } : { kind: 'anonymous' },
      ...requestFacts(ctx),
      details: { appSessionsEnded },
    });
  });

  provider.on('grant.revoked', (ctx: KoaContextWithOIDC, grantId: string) => {
    // Signing out ends the session's grants and tokens, not the consent: the person withdrew nothing.
    if (SIGN_OUT_ROUTES.has(ctx.oidc.route)) return;
    const token = ctx.oidc.entities.AccessToken ?? ctx.oidc.entities.RefreshToken;
    const accountId = ctx.oidc.session?.accountId ?? token?.accountId;
    const byClient = ctx.oidc.route === 'revocation' && ctx.oidc.client;
    void audit.record({
      type: 'consent.revoked',
      outcome: 'success',
      actor: byClient ? { kind: 'client', id: ctx.oidc.client!.clientId } : accountId ? { kind: 'account', id: accountId } : { kind: 'anonymous' },
      target: { kind: 'grant', id: grantId },
      ...requestFacts(ctx),
      details: { via: ctx.oidc.route, ...(accountId ? { accountId } : {}) },
    });
  });

  // Tokens are destroyed elsewhere too (e.g. a reused refresh token): record the revocation endpoint's.
  const onDestroyed = (token: RevocableToken) => {
    const ctx = Provider.ctx as KoaContextWithOIDC | undefined;
    if (ctx?.oidc?.route !== 'revocation') return;
    void audit.record({
      type: 'token.revoked',
      outcome: 'success',
      actor: ctx.oidc.client ? { kind: 'client', id: ctx.oidc.client.clientId } : { kind: 'anonymous' },
      ...requestFacts(ctx),
      details: { kind: token.kind, ...(token.accountId ? { accountId: token.accountId } : {}), ...(token.grantId ? { grantId: token.grantId } : {}) },
    });
  };
  provider.on('access_token.destroyed', onDestroyed);
  provider.on('refresh_token.destroyed', onDestroyed);
  provider.on('client_credentials.destroyed', onDestroyed);

  // RFC 7591 registration is anonymous (an initial access token stands for it); RFC 7592 management is the client itself.
  const registration = (type: string) => (ctx: KoaContextWithOIDC, client: { clientId: string }) => {
    const tokenId = ctx.state?.registrationTokenId as string | undefined;
    void audit.record({
      type,
      outcome: 'success',
      actor: type === 'client.registered' ? { kind: 'anonymous' } : { kind: 'client', id: client.clientId },
      target: { kind: 'client', id: client.clientId },
      ...requestFacts(ctx),
      clientId: client.clientId,
      details: { via: 'dynamic_registration', ...(tokenId ? { registrationTokenId: tokenId } : {}) },
    });
  };
  provider.on('registration_create.success', registration('client.registered'));
  provider.on('registration_update.success', registration('client.updated'));
  provider.on('registration_delete.success', registration('client.deleted'));
}
