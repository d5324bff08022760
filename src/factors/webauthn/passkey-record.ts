/**
 * How a registered WebAuthn credential ("passkey" or security key) sits in the `credentials`
 * collection, what the account's owner sees of it, and what a sign-in with it proves (amr).
 *
 * The document id is `webauthn:<credential ID>`: credential IDs are globally unique, so the _id index
 * refuses a second registration of the same credential, by this account or any other (a credential
 * ID registered twice could let one account's key open another's).
 */
import type { CredentialDeviceType } from '@simplewebauthn/server';
import type { CredentialDocument } from '../credentials.js';
import type { PasskeyTransport } from './responses.js';

export interface PasskeyCredential extends CredentialDocument {
  type: 'webauthn';
  /** base64url, as the browser reports it. */
  credentialId: string;
  /** The COSE public key, base64url. Not a secret, but only the verifier needs it. */
  publicKey: string;
  /** The authenticator's signature counter; 0 for authenticators that keep none (most synced passkeys). */
  counter: number;
  transports: PasskeyTransport[];
  /** The authenticator model's AAGUID (all zeros when the authenticator does not say). */
  aaguid: string;
  /** singleDevice: the key cannot leave the authenticator; multiDevice: it may be synced (backup eligible). */
  deviceType: CredentialDeviceType;
  /** Whether the key is backed up (synced) now; it can change after registration. */
  backedUp: boolean;
  /** The RP ID it was registered for: if that setting ever changes, this credential stops working. */
  rpId: string;
  name: string;
  lastUsedAt: Date | null;
}

/** What a user (or an admin) sees of a passkey: never the public key. */
export interface PasskeySummary {
  credentialId: string;
  name: string;
  deviceType: CredentialDeviceType;
  backedUp: boolean;
  transports: PasskeyTransport[];
  aaguid: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export const PASSKEY_NAME_MAX = 64;

export function passkeyDocumentId(credentialId: string): string {
  return `webauthn:${credentialId}`;
}

export function summarise(doc: PasskeyCredential): PasskeySummary {
  const { credentialId, name, deviceType, backedUp, transports, aaguid, createdAt, lastUsedAt } = doc;
  return { credentialId, name, deviceType, backedUp, transports, aaguid, createdAt, lastUsedAt };
}

/**
 * A user's name for a passkey, made safe to show: control and bidirectional-override characters
 * removed (they could disguise the name on the management page), whitespace collapsed, trimmed and cut
 * to PASSKEY_NAME_MAX characters (whole code points). null when nothing is left.
 */
export function normalisePasskeyName(input: unknown): string | null {
  if (typeof input !== 'string') return null;
  const cleaned = input
    .replace(/[\p{Cc}\u200E\u200F\u202A-\u202E\u2066-\u2069]/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  const name = Array.from(cleaned).slice(0, PASSKEY_NAME_MAX).join('').trim();
  return name.length > 0 ? name : null;
}

/** The name used when the user gave none. */
export function defaultPasskeyName(deviceType: CredentialDeviceType): string {
  return deviceType === 'multiDevice' ? 'Synced passkey' : 'Security key or device';
}

/**
 * amr values (RFC 8176) for a sign-in with this credential:
 *  - "hwk" when the key is bound to one authenticator (singleDevice, not backed up);
 *    "swk" when it is a synced passkey, whose private key exists outside the hardware.
 *  - "user" when the authenticator verified the user (UV flag). The flag does not say how (fingerprint,
 *    face, device PIN or pattern). "pin" would claim a knowledge factor that may never have been
 *    asked for, and "face"/"fpt" a modality we cannot know; "user" is the RFC's generic value for
 *    the authenticator having tested the user. We emit it only for UV, not for mere presence (UP),
 *    so an RP can read "hwk"/"swk" + "user" as possession plus a local verification.
 */
export function passkeyAmr(deviceType: CredentialDeviceType, backedUp: boolean, userVerified: boolean): string[] {
  const possession = deviceType === 'singleDevice' && !backedUp ? 'hwk' : 'swk';
  return userVerified ? [possession, 'user'] : [possession];
}
