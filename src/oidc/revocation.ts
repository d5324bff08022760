/**
 * Finds and removes oidc-provider artifacts (sessions, grants, tokens, codes) that belong to an account or
 * a client, for "delete client", "revoke all sessions and grants" and the account area's list of apps with
 * access (src/selfservice/app-access.ts). The adapter copies `accountId` and `clientId` out of each payload
 * into indexed fields, so the records are found by the index. Records written before those fields existed
 * hold neither (the index files them under null): among those only, candidates are found by the exact JSON
 * member (`"clientId":"…"`), and every candidate is confirmed on its parsed payload before it is used.
 *
 * Consent records (consent-records.ts) go with the grants: whatever revokes every grant of an account or a
 * client also forgets the consent behind them, or the next sign-in would recreate the grants at once.
 */
import type { Connection } from 'mongoose';
import { collectionFor } from './adapter.js';
import { CONSENT_COLLECTION } from './consent-records.js';

/** Not an oidc-provider model: the consent records, kept by account and client (plain fields, no payload). */
export const CONSENT_RECORDS = 'ConsentRecord';

export const CLIENT_ARTIFACTS = [
  'AccessToken', 'RefreshToken', 'AuthorizationCode', 'ClientCredentials', 'Grant', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PushedAuthorizationRequest', 'RegistrationAccessToken', CONSENT_RECORDS,
] as const;

export const ACCOUNT_ARTIFACTS = ['Session', 'Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode', 'BackchannelAuthenticationRequest', CONSENT_RECORDS] as const;

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A stored record with its payload parsed. */
export interface FoundArtifact {
  _id: string;
  payload: Record<string, unknown>;
  expiresAt?: Date;
}

/** Every record of one kind whose payload has `field === value`, each confirmed on its parsed payload. */
export async function findArtifacts(connection: Connection, model: string, field: 'clientId' | 'accountId', value: string): Promise<FoundArtifact[]> {
  // Inside a JSON string a quote is always escaped, so this member can only match a real key/value pair.
  const member = new RegExp(escapeRegex(`"${field}":${JSON.stringify(value)}`));
  const collection = connection.collection<{ _id: string; data: string; expiresAt?: Date }>(collectionFor(model));
  const candidates = await collection
    .find({ $or: [{ [field]: value }, { [field]: null, data: { $regex: member } }] }, { projection: { _id: 1, data: 1, expiresAt: 1 } })
    .toArray();
  return candidates
    .map((doc) => ({ _id: doc._id, payload: JSON.parse(doc.data) as Record<string, unknown>, ...(doc.expiresAt ? { expiresAt: doc.expiresAt } : {}) }))
    .filter((doc) => doc.payload[field] === value);
}

/** Deletes every artifact of the given kinds whose payload has `field === value`; counts per kind. */
export async function removeArtifacts(
  connection: Connection,
  models: readonly string[],
  field: 'clientId' | 'accountId',
  value: string,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const forgetConsent = async () => {
    counts[CONSENT_RECORDS] = (counts[CONSENT_RECORDS] ?? 0) + (await connection.collection(CONSENT_COLLECTION).deleteMany({ [field]: value })).deletedCount;
  };
  // Consent records go first, so no sign-in meanwhile recreates a grant from one after the grants are gone,
  // and again last, as a sign-in that used a grant before it went may have written its record back.
  const withConsent = models.includes(CONSENT_RECORDS);
  if (withConsent) await forgetConsent();
  for (const model of models) {
    if (model === CONSENT_RECORDS) continue;
    const ids = (await findArtifacts(connection, model, field, value)).map((doc) => doc._id);
    counts[model] = ids.length ? (await connection.collection<{ _id: string }>(collectionFor(model)).deleteMany({ _id: { $in: ids } })).deletedCount : 0;
  }
  if (withConsent) await forgetConsent();
  return counts;
}
