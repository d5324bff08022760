/**
 * Ending an account's other sign-in sessions, after its password was changed in /account: whoever signed in
 * with the old password elsewhere is signed out, while the person who changed it stays on the page.
 *
 * Each other session is ended as a sign-out ends it: the session record goes, and so do the grants it holds
 * for apps (with their tokens and codes) unless they were issued to outlast sign-out (offline access). The
 * consent behind those grants stays (src/oidc/consent-records.ts): the apps ask for a new sign-in, not for
 * permission again. A grant the kept session also holds is left alone.
 */
import type { Connection } from 'mongoose';
import type Provider from 'oidc-provider';
import { guardDatabase } from '../oidc/adapter.js';
import { findArtifacts } from '../oidc/revocation.js';
import { revokeGrant } from './app-access.js';

interface Authorization {
  grantId?: unknown;
  persistsLogout?: unknown;
}

function grantsHeldBy(payload: Record<string, unknown> | undefined, includeOffline: boolean): string[] {
  const authorizations = (payload?.authorizations ?? {}) as Record<string, Authorization>;
  return Object.values(authorizations)
    .filter((a) => typeof a?.grantId === 'string' && (includeOffline || a.persistsLogout !== true))
    .map((a) => a.grantId as string);
}

/** Ends every session of the account but `keepSessionId` (oidc-provider's session id, its cookie's value). */
export async function endOtherSessions(provider: Provider, connection: Connection, accountId: string, keepSessionId: string): Promise<{ sessions: number; grants: number }> {
  const sessions = await guardDatabase(() => findArtifacts(connection, 'Session', 'accountId', accountId));
  const kept = new Set(grantsHeldBy(sessions.find((s) => s._id === keepSessionId)?.payload, true));
  let ended = 0;
  const revoked = new Set<string>();
  for (const session of sessions) {
    if (session._id === keepSessionId) continue;
    // The session first: from here on its cookie signs no one in, even while its grants are being revoked.
    await guardDatabase(() => provider.Session.adapter.destroy(session._id));
    ended += 1;
    for (const grantId of grantsHeldBy(session.payload, false)) {
      if (kept.has(grantId) || revoked.has(grantId)) continue;
      await guardDatabase(() => revokeGrant(provider, grantId));
      revoked.add(grantId);
    }
  }
  return { sessions: ended, grants: revoked.size };
}
