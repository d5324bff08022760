/**
 * oidc-provider's findAccount: maps an account to the claims its scopes release. `sub` is the opaque
 * accountId, never the User ID. A disabled account is not found, which ends its existing sessions.
 */
import type { Account, FindAccount } from 'oidc-provider';
import type { AccountService } from '../accounts/accounts.js';
import type { AccountDocument, AccountFields } from '../accounts/account.model.js';
import { guardDatabase, readAheadAccount } from './adapter.js';

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

/**
 * The account behind a `sub`, read at most once per oidc-provider request: findAccount (the resumed
 * authorization, the token exchange, userinfo) and loadExistingGrant in the same request share one read,
 * and when the token found in this request brought its account along (adapter.ts), no read at all.
 * Nothing outlives the request (keyed on its ctx), so a disabled account is refused from the next request on.
 */
export class RequestAccounts {
  private readonly byRequest = new WeakMap<object, Map<string, Promise<AccountDocument | null>>>();

  constructor(private readonly accounts: AccountService) {}

  find(ctx: object, accountId: string): Promise<AccountDocument | null> {
    let found = this.byRequest.get(ctx);
    if (!found) this.byRequest.set(ctx, (found = new Map()));
    let account = found.get(accountId);
    if (!account) {
      const ahead = readAheadAccount(ctx, accountId);
      account = ahead ? Promise.resolve(this.accounts.model.hydrate(ahead) as AccountDocument) : this.accounts.findByAccountId(accountId);
      found.set(accountId, account);
      // A failed read is not kept: the next caller in the request tries again.
      account.catch(() => found!.delete(accountId));
    }
    return account;
  }
}

export function createFindAccount(accounts: AccountService | RequestAccounts): FindAccount {
  const reads = accounts instanceof RequestAccounts ? accounts : new RequestAccounts(accounts);
  return async (ctx, sub): Promise<Account | undefined> => {
    const account = await guardDatabase(() => reads.find(ctx, sub));
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
