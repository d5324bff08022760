/**
 * Where a recovery started from an app's sign-in page leads back to. The browser only ever names an
 * interaction id; every link is derived here from what the server holds (the live interaction, or the
 * registered client), so nothing the browser sends can turn it into an open redirect.
 */
import type Provider from 'oidc-provider';

/** What the recovery remembers about its origin: the interaction and the client it was for. */
export interface RecoveryOrigin {
  uid: string;
  clientId: string;
}

export interface AppReturnLink {
  href: string;
  clientName: string;
  /** true: the sign-in itself can be continued; false: only the app's own site is known. */
  continues: boolean;
}

export interface AppReturns {
  origin(uid: unknown): Promise<RecoveryOrigin | null>;
  link(origin: RecoveryOrigin): Promise<AppReturnLink | null>;
}

// oidc-provider's interaction ids are URL-safe random strings.
const UID = /^[A-Za-z0-9_-]{1,64}$/;

export function appReturns(provider: Provider): AppReturns {
  const liveInteraction = async (uid: string) => {
    const interaction = await provider.Interaction.find(uid);
    return interaction && !interaction.isExpired ? interaction : undefined;
  };
  return {
    async origin(uid) {
      if (typeof uid !== 'string' || !UID.test(uid)) return null;
      const clientId = (await liveInteraction(uid))?.params.client_id;
      return typeof clientId === 'string' && clientId ? { uid, clientId } : null;
    },

    async link({ uid, clientId }) {
      const client = await provider.Client.find(clientId);
      if (!client) return null;
      const clientName = client.clientName ?? clientId;
      if ((await liveInteraction(uid))?.params.client_id === clientId) return { href: `/interaction/${uid}`, clientName, continues: true };
      // The sign-in has expired: the app's site, from its first registered web redirect URI.
      for (const uri of client.redirectUris ?? []) {
        const url = parseUrl(uri);
        if (url && (url.protocol === 'https:' || url.protocol === 'http:')) return { href: `${url.origin}/`, clientName, continues: false };
      }
      return null;
    },
  };
}

function parseUrl(value: string): URL | null {
  try {
    return new URL(value);
  } catch {
    return null;
  }
}
