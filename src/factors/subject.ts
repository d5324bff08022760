/**
 * Building the FactorSubject the factors work with from an account document. The subject also carries
 * the account's primary market: the email and SMS factors take their code length, lifetime and limits
 * from that market's policy (an account is governed by its own market, wherever it acts).
 */
import type { AccountFields } from '../accounts/account.model.js';
import type { FactorSubject } from './types.js';

export interface AccountSubject extends FactorSubject {
  market: string;
}

type SubjectSource = Pick<AccountFields, 'accountId' | 'userId' | 'name' | 'email' | 'emailVerified' | 'phone' | 'phoneVerified' | 'market'>;

export function subjectFromAccount(account: SubjectSource): AccountSubject {
  return {
    accountId: account.accountId,
    userId: account.userId,
    name: account.name,
    email: account.email ?? null,
    emailVerified: account.emailVerified === true,
    phone: account.phone ?? null,
    phoneVerified: account.phoneVerified === true && Boolean(account.phone),
    market: account.market,
  };
}

/** The subject's market, or null (→ the default policy) for a subject not built by subjectFromAccount. */
export function marketOf(subject: FactorSubject): string | null {
  const market = (subject as Partial<AccountSubject>).market;
  return typeof market === 'string' ? market : null;
}
