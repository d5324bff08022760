/**
 * A software WebAuthn authenticator plus browser for the factor tests: what navigator.credentials
 * create()/get() would return, built by hand from node:crypto so every field can be bent on purpose.
 * ES256 keys, "none" attestation; authenticator data = rpIdHash | flags | signCount | [AAGUID |
 * credential ID length | credential ID | COSE key]; assertions sign authenticatorData || SHA-256(clientDataJSON).
 * CBOR comes from @simplewebauthn/server's own helpers (tiny-cbor), so no extra dependency.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { isoCBOR } from '@simplewebauthn/server/helpers';

const FLAG_UP = 0x01; // user present
const FLAG_UV = 0x04; // user verified
const FLAG_BE = 0x08; // backup eligible (multi-device)
const FLAG_BS = 0x10; // backed up
const FLAG_AT = 0x40; // attested credential data included

export interface AuthenticatorTraits {
  /** A synced passkey (backup eligible and backed up) rather than a hardware-bound key. */
  synced?: boolean;
  /** Keeps a signature counter, as security keys do; synced passkeys report 0. */
  countsSignatures?: boolean;
  /** Default true. */
  verifiesUser?: boolean;
  aaguid?: string;
  transports?: string[];
}

export interface SoftwareKey {
  credentialId: string;
  privateKey: KeyObject;
  /** base64url, as given in the registration options' user.id. */
  userHandle: string;
  counter: number;
}

/** Deliberate deviations, for the negative tests. */
export interface Bend {
  rpId?: string;
  challenge?: string;
  type?: string;
  userVerified?: boolean;
  backupEligible?: boolean;
  counter?: number;
  /** null: leave the user handle out. */
  userHandle?: string | null;
}

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

function uint32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

export class SoftwareAuthenticator {
  readonly keys: SoftwareKey[] = [];

  constructor(readonly traits: AuthenticatorTraits = {}) {}

  /** navigator.credentials.create() run on `origin`; `reuse` re-registers a key this authenticator already holds. */
  create(options: PublicKeyCredentialCreationOptionsJSON, origin: string, bend: Bend & { reuse?: SoftwareKey } = {}): RegistrationResponseJSON {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const key: SoftwareKey = bend.reuse ?? { credentialId: randomBytes(16).toString('base64url'), privateKey, userHandle: options.user.id, counter: 0 };
    const jwk = (bend.reuse ? bend.reuse.privateKey : publicKey).export({ format: 'jwk' });
    const coseKey = new Map<number, number | Uint8Array>([
      [1, 2], // kty: EC2
      [3, -7], // alg: ES256
      [-1, 1], // crv: P-256
      [-2, Buffer.from(jwk.x!, 'base64url')],
      [-3, Buffer.from(jwk.y!, 'base64url')],
    ]);
    const credentialId = Buffer.from(key.credentialId, 'base64url');
    const credentialIdLength = Buffer.alloc(2);
    credentialIdLength.writeUInt16BE(credentialId.length);
    const authData = Buffer.concat([
      sha256(bend.rpId ?? options.rp.id!),
      Buffer.from([this.flags(bend) | FLAG_AT]),
      uint32(key.counter),
      Buffer.from(this.traits.aaguid ?? '00'.repeat(16), 'hex'),
      credentialIdLength,
      credentialId,
      isoCBOR.encode(coseKey),
    ]);
    const attestationObject = isoCBOR.encode(new Map<string, string | Uint8Array | Map<string, string>>([['fmt', 'none'], ['attStmt', new Map<string, string>()], ['authData', authData]]));
    if (!bend.reuse) this.keys.push(key);
    return {
      id: key.credentialId,
      rawId: key.credentialId,
      type: 'public-key',
      response: {
        clientDataJSON: this.clientData('webauthn.create', options.challenge, origin, bend),
        attestationObject: Buffer.from(attestationObject).toString('base64url'),
        transports: (this.traits.transports ?? ['internal']) as RegistrationResponseJSON['response']['transports'],
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /**
   * navigator.credentials.get() run on `origin`, with `key` or else the first key the options allow
   * (any of ours for an empty allow list: a discoverable credential).
   */
  get(options: PublicKeyCredentialRequestOptionsJSON, origin: string, bend: Bend & { key?: SoftwareKey } = {}): AuthenticationResponseJSON {
    const allowed = options.allowCredentials ?? [];
    const key = bend.key ?? this.keys.find((k) => allowed.length === 0 || allowed.some((a) => a.id === k.credentialId));
    if (!key) throw new Error('this authenticator holds no key the options allow');
    if (this.traits.countsSignatures) key.counter += 1;
    const authenticatorData = Buffer.concat([sha256(bend.rpId ?? options.rpId!), Buffer.from([this.flags(bend)]), uint32(bend.counter ?? key.counter)]);
    const clientDataJSON = this.clientData('webauthn.get', options.challenge, origin, bend);
    // ECDSA in DER form, as WebAuthn specifies for ES256.
    const signature = sign('sha256', Buffer.concat([authenticatorData, sha256(Buffer.from(clientDataJSON, 'base64url'))]), key.privateKey);
    const userHandle = bend.userHandle === undefined ? key.userHandle : bend.userHandle;
    return {
      id: key.credentialId,
      rawId: key.credentialId,
      type: 'public-key',
      response: {
        clientDataJSON,
        authenticatorData: authenticatorData.toString('base64url'),
        signature: signature.toString('base64url'),
        ...(userHandle === null ? {} : { userHandle }),
      },
      clientExtensionResults: {},
    };
  }

  /** Another authenticator holding copies of this one's keys, counters included (a cloned security key). */
  clone(): SoftwareAuthenticator {
    const copy = new SoftwareAuthenticator(this.traits);
    copy.keys.push(...this.keys.map((k) => ({ ...k })));
    return copy;
  }

  private flags(bend: Bend): number {
    const backupEligible = bend.backupEligible ?? this.traits.synced === true;
    let flags = FLAG_UP;
    if (bend.userVerified ?? this.traits.verifiesUser ?? true) flags |= FLAG_UV;
    if (backupEligible) flags |= FLAG_BE;
    if (backupEligible && this.traits.synced) flags |= FLAG_BS;
    return flags;
  }

  private clientData(type: string, challenge: string, origin: string, bend: Bend): string {
    const json = JSON.stringify({ type: bend.type ?? type, challenge: bend.challenge ?? challenge, origin, crossOrigin: false });
    return Buffer.from(json).toString('base64url');
  }
}
