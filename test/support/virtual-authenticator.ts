/**
 * A Chrome DevTools Protocol virtual authenticator for a playwright page: a platform authenticator
 * (ctap2, internal transport) that holds discoverable credentials and verifies the user, answering
 * every WebAuthn request of the page's browser context by itself.
 */
import type { CDPSession, Page } from 'playwright-core';

export interface VirtualAuthenticator {
  cdp: CDPSession;
  authenticatorId: string;
  /** Whether the next ceremonies report user verification (false: the user "fails" the fingerprint). */
  setUserVerified(verified: boolean): Promise<void>;
  /** Whether the authenticator answers by itself (false: requests wait, as for a user who walks away). */
  setPresence(enabled: boolean): Promise<void>;
  credentials(): Promise<Array<{ credentialId: string; signCount: number; userHandle?: string; rpId?: string }>>;
  remove(): Promise<void>;
}

export async function addVirtualAuthenticator(page: Page): Promise<VirtualAuthenticator> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return {
    cdp,
    authenticatorId,
    setUserVerified: async (isUserVerified) => {
      await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified });
    },
    setPresence: async (enabled) => {
      await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled });
    },
    credentials: async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials,
    remove: async () => {
      await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId });
    },
  };
}
