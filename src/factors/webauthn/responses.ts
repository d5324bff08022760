/**
 * The browser's ceremony results arrive as untrusted JSON. Before anything reaches a database query or
 * @simplewebauthn/server, they are checked for shape and size here and rebuilt from the checked fields
 * only (so e.g. `{ "$ne": null }` can never become a query operator). Anything malformed is simply
 * "invalid" for the caller.
 */
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { z } from 'zod';

/** The transports browsers report (WebAuthn's AuthenticatorTransport); anything else is dropped rather than stored. */
export const KNOWN_TRANSPORTS = ['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb'] as const;
export type PasskeyTransport = (typeof KNOWN_TRANSPORTS)[number];

const base64url = (maxChars: number) => z.string().min(1).max(maxChars).regex(/^[A-Za-z0-9_-]+$/);
// WebAuthn caps credential IDs at 1023 bytes (1364 base64url characters).
const credentialId = base64url(1364);

const registrationSchema = z.object({
  id: credentialId,
  rawId: credentialId,
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: base64url(8192),
    attestationObject: base64url(65536),
    transports: z.array(z.string().max(32)).max(16).optional(),
  }),
});

const authenticationSchema = z.object({
  id: credentialId,
  rawId: credentialId,
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: base64url(8192),
    authenticatorData: base64url(8192),
    signature: base64url(8192),
    // The user handle is at most 64 bytes; browsers send null or leave it out when there is none.
    userHandle: z.union([base64url(86), z.literal('')]).nullish(),
  }),
});

/** The checked response, and its transports (unsigned hints from the browser) reduced to known ones. */
export function parseRegistrationResponse(input: unknown): { response: RegistrationResponseJSON; transports: PasskeyTransport[] } | null {
  const parsed = registrationSchema.safeParse(input);
  if (!parsed.success) return null;
  const { id, rawId, response } = parsed.data;
  const transports = [...new Set((response.transports ?? []).filter(isKnownTransport))];
  return {
    response: {
      id,
      rawId,
      type: 'public-key',
      response: { clientDataJSON: response.clientDataJSON, attestationObject: response.attestationObject, transports },
      clientExtensionResults: {},
    },
    transports,
  };
}

export function parseAuthenticationResponse(input: unknown): AuthenticationResponseJSON | null {
  const parsed = authenticationSchema.safeParse(input);
  if (!parsed.success) return null;
  const { id, rawId, response } = parsed.data;
  return {
    id,
    rawId,
    type: 'public-key',
    response: {
      clientDataJSON: response.clientDataJSON,
      authenticatorData: response.authenticatorData,
      signature: response.signature,
      ...(response.userHandle ? { userHandle: response.userHandle } : {}),
    },
    clientExtensionResults: {},
  };
}

/** The challenge the browser says it signed (checked again by the library against the one we stored), or null. */
export function claimedChallenge(clientDataJSON: string): string | null {
  try {
    const clientData: unknown = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8'));
    const challenge = (clientData as { challenge?: unknown } | null)?.challenge;
    return typeof challenge === 'string' ? challenge : null;
  } catch {
    return null;
  }
}

/** The account a passkey says it belongs to (the user handle is the accountId's UTF-8 bytes), or null. */
export function userHandleAccountId(response: AuthenticationResponseJSON): string | null {
  const handle = response.response.userHandle;
  return handle ? Buffer.from(handle, 'base64url').toString('utf8') : null;
}

function isKnownTransport(value: string): value is PasskeyTransport {
  return (KNOWN_TRANSPORTS as readonly string[]).includes(value);
}
