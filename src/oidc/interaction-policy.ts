/**
 * The interaction policy: oidc-provider's prompts ("login", "consent") and the checks that decide
 * when each must be shown. Gatehouse adds its own checks here (MFA and step-up will too).
 */
import { interactionPolicy } from 'oidc-provider';

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
  return policy;
}
