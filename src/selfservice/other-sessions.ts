/**
 * Ending an account's other sign-in sessions, after its password was changed in /account: whoever signed in
 * with the old password elsewhere is signed out, while the person who changed it stays on the page.
 *
 * Each other session record goes, and so does every grant of the account that the kept session does not
 * hold, with its tokens and codes: also grants issued to outlast sign-out (offline access) and grants whose
 * session has already ended, since whoever knew the old password may have taken those. The consent behind
 * them stays (src/oidc/consent-records.ts): the apps ask for a new sign-in, not for permission again.
 */
import type { Connection } from 'mongoose';
import type Provider from 'oidc-provider';
import { guardDatabase } from '../oidc/adapter.js';
import { findArtifacts } from '../oidc/revocation.js';
import { revokeGrant } from './app-access.js';

function grantsHeldBy(payload: Record<string, unknown> | undefined): string[] {
  const authorizations = (payload?.authorizations ?? {}) as Record<string, { grantId?: unknown }>;
  return Object.values(authorizations)
    .map((a) => a?.grantId)
    .filter((id): id is string => typeof id === 'string');
}

/**
 * Ends every session of the account but `keepSessionId` (oidc-provider's session id, its cookie's value), and
 * revokes every grant of the account that the kept session does not hold.
 */
export async function endOtherSessions(provider: Provider, connection: Connection, accountId: string, keepSessionId: string): Promise<{ sessions: number; grants: number }> {
  const sessions = await guardDatabase(() => findArtifacts(connection, 'Session', 'accountId', accountId));
  const kept = new Set(grantsHeldBy(sessions.find((s) => s._id === keepSessionId)?.payload));
  let ended = 0;
  for (const session of sessions) {
    if (session._id === keepSessionId) continue;
    // The sessions first: from here on their cookies sign no one in, even while the grants are being revoked.
    await guardDatabase(() => provider.Session.adapter.destroy(session._id));
    ended += 1;
  }
  const grants = await guardDatabase(() => findArtifacts(connection, 'Grant', 'accountId', accountId));
  let revoked = 0;
  for (const grant of grants) {
    if (kept.has(grant._id)) continue;
    await guardDatabase(() => revokeGrant(provider, grant._id));
    revoked += 1;
  }
  return { sessions: ended, grants: revoked };
}
