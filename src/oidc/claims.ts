/**
 * oidc-provider's findAccount: maps an account to the claims its scopes release. `sub` is the opaque
 * accountId, never the User ID. A disabled account is not found, which ends its existing sessions.
 */
import type { Account, FindAccount } from 'oidc-provider';
import type { AccountService } from '../accounts/accounts.js';
import type { AccountFields } from '../accounts/account.model.js';

export function accountClaims(account: AccountFields): Record<string, unknown> {
  return {
    sub: account.accountId,
    name: account.name,
    preferred_username: account.userId,
    updated_at: Math.floor(account.updatedAt.getTime() / 1000),
    ...(account.email ? { email: account.email, email_verified: account.emailVerified } : {}),
    ...(account.phone ? { phone_number: account.phone, phone_number_verified: account.phoneVerified } : {}),
  };
}

export function createFindAccount(accounts: AccountService): FindAccount {
  return async (_ctx, sub): Promise<Account | undefined> => {
    const account = await accounts.findByAccountId(sub);
    // A disabled or locked account is not found, which ends its existing sessions.
    if (!account || account.status !== 'active') return undefined;
    const claims = accountClaims(account);
    return {
      accountId: account.accountId,
      // oidc-provider filters these down to what the granted scopes and claims allow.
      claims: async () => claims as { sub: string },
    };
  };
}
