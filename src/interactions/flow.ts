/**
 * The sign-in flow: which page an interaction shows and what each submission does. Routes
 * (routes.ts) only parse requests and call these; every step and transition lives here.
 *
 *   prompt "login"   → password page → (valid) login result, amr ["pwd"]
 *   prompt "consent" → consent page  → approve: Grant saved; deny: access_denied to the RP
 *
 * Later steps (second factor, enrolment, trusted device) slot in between password and login result.
 */
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import type { AccountService } from '../accounts/accounts.js';
import type { AuditLog } from '../audit/audit.js';
import type { PasswordHasher } from '../factors/password/password.js';
import { ACR, CLAIM_DESCRIPTIONS, SCOPE_DESCRIPTIONS } from '../oidc/scopes.js';
import type { CsrfTokens } from './csrf.js';

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

export interface View {
  template: string;
  status?: number;
  locals: Record<string, unknown>;
}

export type Outcome = { view: View } | { redirect: string };

export interface FlowDeps {
  provider: Provider;
  accounts: AccountService;
  hasher: PasswordHasher;
  audit: AuditLog;
  csrf: CsrfTokens;
}

/** The one message for every failed password sign-in: it never tells which part was wrong. */
export const SIGN_IN_FAILED = 'The User ID, email or password you entered is incorrect.';

export const LIMITS = { login: 254, password: 1024 } as const;

export class SignInFlow {
  constructor(private readonly deps: FlowDeps) {}

  details(ctx: Context): Promise<Details> {
    return this.deps.provider.interactionDetails(ctx.req, ctx.res);
  }

  private async clientName(details: Details): Promise<string> {
    const client = await this.deps.provider.Client.find(String(details.params.client_id));
    return client?.clientName ?? String(details.params.client_id);
  }

  private loginView(details: Details, clientName: string, extra: { login?: string; error?: string; status?: number } = {}): View {
    return {
      template: 'login',
      status: extra.status ?? 200,
      locals: {
        title: 'Sign in',
        uid: details.uid,
        csrf: this.deps.csrf.issue(details.uid),
        clientName,
        login: extra.login ?? (typeof details.params.login_hint === 'string' ? details.params.login_hint : ''),
        error: extra.error ?? null,
        limits: LIMITS,
      },
    };
  }

  /** The page for the interaction's current prompt. */
  async show(ctx: Context): Promise<Outcome> {
    const details = await this.details(ctx);
    const clientName = await this.clientName(details);
    if (details.prompt.name === 'login') return { view: this.loginView(details, clientName) };
    if (details.prompt.name === 'consent') return { view: this.consentView(details, clientName) };
    throw Object.assign(new Error(`unsupported prompt ${details.prompt.name}`), { status: 400, expose: true });
  }

  private consentView(details: Details, clientName: string): View {
    const promptDetails = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    const scopes = (promptDetails.missingOIDCScope ?? []).map((scope) => ({ scope, text: SCOPE_DESCRIPTIONS[scope] ?? `Use the "${scope}" permission` }));
    const claims = (promptDetails.missingOIDCClaims ?? []).map((claim) => CLAIM_DESCRIPTIONS[claim] ?? claim);
    const resources = Object.entries(promptDetails.missingResourceScopes ?? {}).map(([resource, list]) => ({ resource, scopes: list }));
    return {
      template: 'consent',
      locals: { title: 'Allow access?', uid: details.uid, csrf: this.deps.csrf.issue(details.uid), clientName, scopes, claims, resources },
    };
  }

  private requestFacts(ctx: Context, details: Details) {
    return { ip: ctx.ip, userAgent: ctx.get('user-agent').slice(0, 256), clientId: String(details.params.client_id), requestId: ctx.state.requestId as string | undefined };
  }

  private finish(ctx: Context, result: InteractionResults, merge = false): Promise<Outcome> {
    return this.deps.provider
      .interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge })
      .then((redirect) => ({ redirect }));
  }

  /** The password step. Unknown user, wrong password and a disabled account look exactly alike. */
  async submitPassword(ctx: Context, form: { login: string; password: string }): Promise<Outcome> {
    const details = await this.details(ctx);
    if (details.prompt.name !== 'login') return this.show(ctx);
    const clientName = await this.clientName(details);
    const facts = this.requestFacts(ctx, details);

    const login = form.login.trim();
    if (!login || !form.password) {
      return { view: this.loginView(details, clientName, { login, error: 'Enter your User ID or email and your password.', status: 400 }) };
    }

    const account = await this.deps.accounts.findByLogin(login);
    const passwordOk = await this.deps.hasher.verify(account?.passwordHash, form.password);
    const usable = account !== null && account.status === 'active';
    if (!passwordOk || !usable) {
      const reason = !account ? 'unknown_account' : !passwordOk ? 'wrong_password' : `account_${account.status}`;
      await this.deps.audit.record({
        type: 'signin.password',
        outcome: 'failure',
        actor: account ? { kind: 'account', id: account.accountId } : { kind: 'anonymous' },
        ...facts,
        details: { reason, identifier: login.slice(0, 64) },
      });
      // The identifier is not echoed back: the page must read the same for every kind of failure.
      return { view: this.loginView(details, clientName, { login: '', error: SIGN_IN_FAILED, status: 401 }) };
    }

    await this.deps.audit.record({ type: 'signin.password', outcome: 'success', actor: { kind: 'account', id: account.accountId }, ...facts });
    if (this.deps.hasher.needsRehash(account.passwordHash!)) {
      // Parameters were raised since this hash was made: upgrade it now that we know the password.
      account.passwordHash = await this.deps.hasher.hash(form.password);
      await account.save();
    }
    return this.finish(ctx, {
      login: { accountId: account.accountId, amr: ['pwd'], acr: ACR.password, remember: true, ts: Math.floor(Date.now() / 1000) },
    });
  }

  async submitConsent(ctx: Context): Promise<Outcome> {
    const details = await this.details(ctx);
    if (details.prompt.name !== 'consent') return this.show(ctx);
    const { provider } = this.deps;
    const accountId = details.session!.accountId;
    const clientId = String(details.params.client_id);
    const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId, clientId });
    if (!grant) throw Object.assign(new Error('grant not found'), { status: 400, expose: true });

    const promptDetails = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (promptDetails.missingOIDCScope) grant.addOIDCScope(promptDetails.missingOIDCScope.join(' '));
    if (promptDetails.missingOIDCClaims) grant.addOIDCClaims(promptDetails.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(promptDetails.missingResourceScopes ?? {})) {
      grant.addResourceScope(resource, scopes.join(' '));
    }
    const grantId = await grant.save();
    await this.deps.audit.record({
      type: 'consent.granted',
      outcome: 'success',
      actor: { kind: 'account', id: accountId },
      ...this.requestFacts(ctx, details),
      details: { scopes: promptDetails.missingOIDCScope ?? [] },
    });
    return this.finish(ctx, { consent: { grantId } }, true);
  }

  /** "Deny" on the consent page, or "cancel" on the sign-in page: the RP receives access_denied. */
  async deny(ctx: Context): Promise<Outcome> {
    const details = await this.details(ctx);
    await this.deps.audit.record({
      type: details.prompt.name === 'consent' ? 'consent.denied' : 'signin.cancelled',
      outcome: 'failure',
      actor: details.session?.accountId ? { kind: 'account', id: details.session.accountId } : { kind: 'anonymous' },
      ...this.requestFacts(ctx, details),
    });
    return this.finish(ctx, { error: 'access_denied', error_description: 'The user denied the request' });
  }
}
