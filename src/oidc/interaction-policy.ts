/**
 * The interaction policy: oidc-provider's prompts ("login", "consent") and the checks that decide
 * when each must be shown. Gatehouse adds its own checks here (MFA and step-up will too).
 */
import { interactionPolicy } from 'oidc-provider';
import { demandsMfa } from '../interactions/requirements.js';
import { ACR } from './scopes.js';

const { Check, base } = interactionPolicy;

export function buildInteractionPolicy(): interactionPolicy.DefaultPolicy {
  const policy = base();
  const login = policy.get('login')!;

  // A session whose account was disabled or deleted since sign-in must sign in again.
  login.checks.add(
    new Check('account_unavailable', 'the signed-in account is no longer available', (ctx) =>
      ctx.oidc.session?.accountId && !ctx.oidc.account ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT,
    ),
  );
  // Step-up: a session that signed in with the password only, asked for MFA by the client or the
  // request (acr_values, the client's default_acr_values, or an essential acr in claims), goes to the second factor.
  login.checks.add(
    new Check('mfa_required', 'multi-factor authentication is required', (ctx) => {
      const { session, params } = ctx.oidc;
      if (!session?.accountId || !demandsMfa(params as Record<string, unknown> | undefined)) return Check.NO_NEED_TO_PROMPT;
      return session.acr === ACR.multiFactor ? Check.NO_NEED_TO_PROMPT : Check.REQUEST_PROMPT;
    }),
  );
  return policy;
}
