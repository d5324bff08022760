/**
 * The `credentials` collection: each factor's own secrets for an account (TOTP seeds, recovery-code
 * hashes, the security-code hash), never anything in clear. Documents have string ids; factors that
 * allow one credential per account use a deterministic id (`<type>:<accountId>`), so "one per account"
 * is enforced by the _id index and replacing it is a single atomic upsert.
 */
import type { Connection } from 'mongoose';

export const CREDENTIALS_COLLECTION = 'credentials';

export interface CredentialDocument {
  _id: string;
  accountId: string;
  type: string;
  createdAt: Date;
  updatedAt: Date;
  /** Set only on credentials that must vanish on their own (an unconfirmed enrolment). */
  expiresAt?: Date;
}

export function credentialsCollection<T extends CredentialDocument>(connection: Connection) {
  return connection.collection<T>(CREDENTIALS_COLLECTION);
}

export async function ensureCredentialIndexes(connection: Connection): Promise<void> {
  await credentialsCollection(connection).createIndexes([
    { key: { accountId: 1, type: 1 }, name: 'account_type' },
    // Documents without expiresAt are never touched by the TTL monitor.
    { key: { expiresAt: 1 }, name: 'expiresAt_ttl', expireAfterSeconds: 0 },
  ]);
}

/**
 * Just enough of a credential to tell whether it is usable (no secrets, no keys): its type, whether it was
 * confirmed, and which of its codes were used. Each factor judges its own kind (`enrolledIn`).
 */
export interface CredentialSummary {
  _id: string;
  accountId: string;
  type: string;
  confirmedAt?: Date | null;
  codes?: Array<{ usedAt: Date | null }>;
}

/**
 * A summary read by the request that is about to verify an authenticator-app code: it also carries what that
 * verification reads (the sealed secret and the last accepted time step), so the factor need not read the
 * credential again. Only ever asked for with `forVerifying: 'totp'`; other summaries stay without secrets.
 */
export interface CredentialForVerifying extends CredentialSummary {
  secretSealed?: string;
  lastUsedStep?: number | null;
}

/**
 * The account's credentials of these types, summarised, in one round trip (the `account_type` index).
 * `forVerifying: 'totp'` adds the fields TOTP verification needs (`CredentialForVerifying`).
 */
export async function credentialSummaries(connection: Connection, accountId: string, types: readonly string[], options: { forVerifying?: string } = {}): Promise<CredentialForVerifying[]> {
  if (types.length === 0) return [];
  const projection: Record<string, 1> = { _id: 1, accountId: 1, type: 1, confirmedAt: 1, 'codes.usedAt': 1 };
  if (options.forVerifying === 'totp') Object.assign(projection, { secretSealed: 1, lastUsedStep: 1 });
  return credentialsCollection(connection).find<CredentialForVerifying>({ accountId, type: { $in: [...types] } }, { projection }).toArray();
}
