/**
 * WebAuthn (passkeys and security keys) with @simplewebauthn/server: registration, sign-in as a second
 * factor after the password, passwordless sign-in with discoverable credentials, and the owner's (and
 * an admin's) management of registered credentials.
 *
 * Every ceremony's challenge is bound to the caller's interaction (or session), single use and short
 * lived (challenges.ts). Registration asks for a discoverable credential with user verification and
 * sets user.id to the opaque accountId, never the User ID or email. A sign-in finds the account from
 * the credential; the user handle, when sent, must name the same account. Failures are typed, never
 * thrown: the caller turns them into a page and an audit entry.
 */
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
} from '@simplewebauthn/server';
import { COSEALG } from '@simplewebauthn/server/helpers';
import type { Connection } from 'mongoose';
import type { Logger } from '../../logger.js';
import { credentialsCollection, type CredentialSummary } from '../credentials.js';
import type { ChallengeContext, Clock, Factor, FactorSubject, VerifyOutcome } from '../types.js';
import { ChallengeStore, type CeremonyBinding, type ConsumedChallenge } from './challenges.js';
import {
  defaultPasskeyName,
  normalisePasskeyName,
  passkeyAmr,
  passkeyDocumentId,
  summarise,
  type PasskeyCredential,
  type PasskeySummary,
} from './passkey-record.js';
import type { RelyingParty } from './relying-party.js';
import { claimedChallenge, parseAuthenticationResponse, parseRegistrationResponse, userHandleAccountId } from './responses.js';

/** Offered at registration and required of the key: the widely supported ones, strongest-supported first. */
const SUPPORTED_ALGORITHMS = [COSEALG.ES256, COSEALG.EdDSA, COSEALG.RS256];

export type RegistrationContext = CeremonyBinding & {
  /** The user's name for the credential ("Work laptop"); a default from its kind when empty. */
  name?: string;
};

/** With accountId: the second factor after the password. Without: passwordless (the passkey names the account). */
export type AuthenticationContext = CeremonyBinding & { accountId?: string };

export type RegistrationFailure = 'no_challenge' | 'invalid' | 'duplicate';
export type RegistrationOutcome = { ok: true; credential: PasskeySummary } | { ok: false; reason: RegistrationFailure };

export type AuthenticationOptionsResult =
  | { ok: true; options: PublicKeyCredentialRequestOptionsJSON }
  | { ok: false; reason: 'not_enrolled' };

export type AuthenticationFailure =
  | 'no_challenge' // missing, expired, already used, or another interaction's / account's
  | 'unknown_credential' // not registered (or removed)
  | 'invalid' // malformed, bad signature, wrong origin or RP ID, user verification missing when required
  | 'wrong_account' // a genuine credential, but of another account than the one signing in
  | 'counter_regression'; // a genuine signature whose counter did not advance: possibly a cloned authenticator

export type AuthenticationOutcome =
  | { ok: true; accountId: string; credentialId: string; amr: string[]; userVerified: boolean }
  | {
      ok: false;
      reason: AuthenticationFailure;
      /** For the audit log only, never for the page: the credential presented and, once known, its owner. */
      credentialId?: string;
      ownerAccountId?: string;
    };

export type RenameOutcome = { ok: true } | { ok: false; reason: 'not_found' | 'invalid_name' };

export interface WebAuthnDeps {
  connection: Connection;
  clock: Clock;
  log: Logger;
  /** Without one, ceremonies throw; listing and removing credentials still work. */
  relyingParty: RelyingParty | null;
}

export class WebAuthnFactor implements Factor<CeremonyBinding, PublicKeyCredentialCreationOptionsJSON, AuthenticationOptionsResult> {
  readonly name = 'webauthn' as const;
  private readonly credentials;
  private readonly challenges: ChallengeStore;

  constructor(private readonly deps: WebAuthnDeps) {
    this.credentials = credentialsCollection<PasskeyCredential>(deps.connection);
    // Without a relying party no challenge is ever issued, so the fallback lifetime is never used.
    this.challenges = new ChallengeStore(deps.connection, deps.clock, deps.relyingParty?.challengeTtlSeconds ?? 300);
  }

  async ensureIndexes(): Promise<void> {
    await this.challenges.ensureIndexes();
  }

  /** False when the issuer cannot host passkeys (no relying party): pages then offer no ceremony. */
  get ceremoniesAvailable(): boolean {
    return this.deps.relyingParty !== null;
  }

  // ---- Registration -------------------------------------------------------------------------------

  /** Options for navigator.credentials.create(), excluding the account's existing credentials. */
  async registrationOptions(subject: FactorSubject, binding: CeremonyBinding): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const rp = this.relyingParty();
    const userId = Buffer.from(subject.accountId, 'utf8');
    if (userId.length === 0 || userId.length > 64) throw new TypeError('a WebAuthn user handle must be 1 to 64 bytes');
    const existing = await this.passkeys(subject.accountId);
    const { challenge, expiresAt } = await this.challenges.issue('registration', binding, subject.accountId, 'required');
    return generateRegistrationOptions({
      rpName: rp.name,
      rpID: rp.id,
      userID: new Uint8Array(userId), // the opaque accountId: the user handle discoverable sign-in returns
      userName: subject.userId, // shown in the authenticator's account picker only
      userDisplayName: subject.name,
      challenge: challengeBytes(challenge),
      timeout: this.timeoutMs(expiresAt),
      attestationType: 'none',
      excludeCredentials: existing.map((c) => ({ id: c.credentialId, transports: c.transports })),
      authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
      supportedAlgorithmIDs: SUPPORTED_ALGORITHMS,
    });
  }

  /** Checks the browser's registration result and stores the new credential. */
  async verifyRegistration(subject: FactorSubject, input: unknown, context: RegistrationContext): Promise<RegistrationOutcome> {
    const rp = this.relyingParty();
    const parsed = parseRegistrationResponse(input);
    const claimed = parsed && claimedChallenge(parsed.response.response.clientDataJSON);
    if (!parsed || !claimed) return { ok: false, reason: 'invalid' };
    const { response, transports } = parsed;
    const challenge = await this.challenges.consume(claimed, 'registration', context, subject.accountId);
    if (!challenge) return { ok: false, reason: 'no_challenge' };

    let verified;
    try {
      verified = await verifyRegistrationResponse({
        response,
        expectedChallenge: claimed,
        expectedOrigin: rp.origins,
        expectedRPID: rp.id,
        requireUserVerification: challenge.userVerification === 'required',
        supportedAlgorithmIDs: SUPPORTED_ALGORITHMS,
      });
    } catch (err) {
      this.refused('passkey registration refused', subject.accountId, response.id, err);
      return { ok: false, reason: 'invalid' };
    }
    // The ID the browser reports must be the one inside the authenticator data.
    if (!verified.verified || verified.registrationInfo.credential.id !== response.id) return { ok: false, reason: 'invalid' };

    const info = verified.registrationInfo;
    const now = this.deps.clock.now();
    const doc: PasskeyCredential = {
      _id: passkeyDocumentId(response.id),
      accountId: subject.accountId,
      type: 'webauthn',
      credentialId: response.id,
      publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
      counter: info.credential.counter,
      transports,
      aaguid: info.aaguid,
      deviceType: info.credentialDeviceType,
      backedUp: info.credentialBackedUp,
      rpId: rp.id,
      name: normalisePasskeyName(context.name) ?? defaultPasskeyName(info.credentialDeviceType),
      createdAt: now,
      updatedAt: now,
      lastUsedAt: null,
    };
    try {
      await this.credentials.insertOne(doc);
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
      this.deps.log.warn({ accountId: subject.accountId, credentialId: response.id }, 'passkey already registered: refused');
      return { ok: false, reason: 'duplicate' };
    }
    this.deps.log.info({ accountId: subject.accountId, credentialId: response.id, deviceType: doc.deviceType }, 'passkey registered');
    return { ok: true, credential: summarise(doc) };
  }

  // ---- Authentication -----------------------------------------------------------------------------

  /**
   * Options for navigator.credentials.get(). With an accountId (after the password): that account's
   * credentials, user verification preferred (recorded when it happens). Without (passwordless, also
   * for conditional mediation): an empty allow list and user verification required, since the passkey
   * then replaces the password.
   */
  async authenticationOptions(context: AuthenticationContext): Promise<AuthenticationOptionsResult> {
    const rp = this.relyingParty();
    const accountId = context.accountId ?? null;
    let allowCredentials: Array<{ id: string; transports: PasskeyCredential['transports'] }> = [];
    if (accountId !== null) {
      allowCredentials = (await this.passkeys(accountId)).map((c) => ({ id: c.credentialId, transports: c.transports }));
      if (allowCredentials.length === 0) return { ok: false, reason: 'not_enrolled' };
    }
    const userVerification = accountId === null ? 'required' : 'preferred';
    const { challenge, expiresAt } = await this.challenges.issue('authentication', context, accountId, userVerification);
    const options = await generateAuthenticationOptions({
      rpID: rp.id,
      challenge: challengeBytes(challenge),
      timeout: this.timeoutMs(expiresAt),
      userVerification,
      allowCredentials,
    });
    return { ok: true, options };
  }

  /** Checks a sign-in; on success the counter and last-used time are updated in one conditional write. */
  async verifyAuthentication(input: unknown, context: AuthenticationContext): Promise<AuthenticationOutcome> {
    const rp = this.relyingParty();
    const response = parseAuthenticationResponse(input);
    const claimed = response && claimedChallenge(response.response.clientDataJSON);
    if (!response || !claimed) return { ok: false, reason: 'invalid' };
    const challenge = await this.challenges.consume(claimed, 'authentication', context, context.accountId ?? null);
    if (!challenge) return { ok: false, reason: 'no_challenge' };

    const credentialId = response.id;
    const stored = await this.credentials.findOne({ _id: passkeyDocumentId(credentialId), type: 'webauthn' });
    if (!stored) return { ok: false, reason: 'unknown_credential', credentialId };

    const checked = await this.checkAssertion(response, claimed, challenge, stored, rp);
    if (!checked) return { ok: false, reason: 'invalid', credentialId };

    // Ownership is judged only on a genuine signature, so forged responses cannot probe who owns what.
    const owner = stored.accountId;
    const handle = userHandleAccountId(response);
    if (challenge.accountId === null && handle === null) return { ok: false, reason: 'invalid', credentialId }; // discoverable credentials always send it
    if ((challenge.accountId !== null && challenge.accountId !== owner) || (handle !== null && handle !== owner)) {
      this.deps.log.warn({ accountId: challenge.accountId ?? handle, credentialId, ownerAccountId: owner }, 'passkey of another account presented');
      return { ok: false, reason: 'wrong_account', credentialId, ownerAccountId: owner };
    }

    // Authenticators that keep a counter must move it forward on every use; zero after zero means the
    // authenticator keeps none. The rule is the update's own filter, so parallel sign-ins cannot both pass.
    const counter = checked.newCounter;
    const now = this.deps.clock.now();
    const updated = await this.credentials.findOneAndUpdate(
      { _id: stored._id, accountId: owner, counter: counter > 0 ? { $lt: counter } : 0 },
      { $set: { counter, backedUp: checked.credentialBackedUp, lastUsedAt: now, updatedAt: now } },
    );
    if (!updated) {
      // The counter did not advance (here or through a parallel sign-in), or the credential was just removed.
      const current = await this.credentials.findOne({ _id: stored._id }, { projection: { counter: 1 } });
      return current ? this.counterRegression(stored, current.counter, counter) : { ok: false, reason: 'unknown_credential', credentialId };
    }
    return {
      ok: true,
      accountId: owner,
      credentialId,
      amr: passkeyAmr(stored.deviceType, checked.credentialBackedUp, checked.userVerified),
      userVerified: checked.userVerified,
    };
  }

  /** Signature, challenge, origin, RP ID, presence and (when asked for) verification; null when any fails. */
  private async checkAssertion(
    response: AuthenticationResponseJSON,
    claimed: string,
    challenge: ConsumedChallenge,
    stored: PasskeyCredential,
    rp: RelyingParty,
  ) {
    try {
      const result = await verifyAuthenticationResponse({
        response,
        expectedChallenge: claimed,
        expectedOrigin: rp.origins,
        expectedRPID: rp.id,
        expectedType: 'webauthn.get',
        // Counter 0 turns the library's own counter check off: it runs before the signature check and
        // cannot be told apart from other failures. Ours runs after the signature (verifyAuthentication).
        credential: {
          id: stored.credentialId,
          publicKey: new Uint8Array(Buffer.from(stored.publicKey, 'base64url')),
          counter: 0,
          transports: stored.transports,
        },
        requireUserVerification: challenge.userVerification === 'required',
      });
      // Backup eligibility is fixed when a credential is made: a change means another authenticator.
      if (!result.verified || result.authenticationInfo.credentialDeviceType !== stored.deviceType) return null;
      return result.authenticationInfo;
    } catch (err) {
      this.refused('passkey sign-in refused', stored.accountId, stored.credentialId, err);
      return null;
    }
  }

  private counterRegression(stored: PasskeyCredential, storedCounter: number, presentedCounter: number): AuthenticationOutcome {
    this.deps.log.warn(
      { accountId: stored.accountId, credentialId: stored.credentialId, storedCounter, presentedCounter },
      'passkey signature counter went backwards: possibly a cloned authenticator',
    );
    return { ok: false, reason: 'counter_regression', credentialId: stored.credentialId, ownerAccountId: stored.accountId };
  }

  // ---- Management ---------------------------------------------------------------------------------

  async isEnrolled(subject: FactorSubject): Promise<boolean> {
    return (await this.credentials.countDocuments({ accountId: subject.accountId, type: 'webauthn' }, { limit: 1 })) > 0;
  }

  /** isEnrolled over credentials already read (credentialSummaries). */
  enrolledIn(subject: FactorSubject, credentials: readonly CredentialSummary[]): boolean {
    return credentials.some((c) => c.accountId === subject.accountId && c.type === 'webauthn');
  }

  /** The account's credentials, oldest first. */
  async list(accountId: string): Promise<PasskeySummary[]> {
    return (await this.passkeys(accountId)).map(summarise);
  }

  /** Renames one of the account's own credentials. */
  async rename(accountId: string, credentialId: string, name: unknown): Promise<RenameOutcome> {
    const normalised = normalisePasskeyName(name);
    if (!normalised) return { ok: false, reason: 'invalid_name' };
    const result = await this.credentials.updateOne(
      { _id: passkeyDocumentId(credentialId), accountId, type: 'webauthn' },
      { $set: { name: normalised, updatedAt: this.deps.clock.now() } },
    );
    return result.matchedCount === 1 ? { ok: true } : { ok: false, reason: 'not_found' };
  }

  /**
   * Removes one of the account's own credentials; false when it has no such credential. Whether the
   * account may lose it (the last second factor where policy requires MFA) is the caller's decision.
   */
  async remove(accountId: string, credentialId: string): Promise<boolean> {
    const result = await this.credentials.deleteOne({ _id: passkeyDocumentId(credentialId), accountId, type: 'webauthn' });
    if (result.deletedCount === 1) this.deps.log.info({ accountId, credentialId }, 'passkey removed');
    return result.deletedCount === 1;
  }

  /** Revokes every credential of the account (administrators); returns how many there were. */
  async removeAll(accountId: string): Promise<number> {
    const result = await this.credentials.deleteMany({ accountId, type: 'webauthn' });
    if (result.deletedCount > 0) this.deps.log.info({ accountId, count: result.deletedCount }, 'all passkeys removed');
    return result.deletedCount;
  }

  // ---- The shared Factor verbs, for code that treats factors alike ------------------------------------

  /** = registrationOptions; finish with verifyRegistration. */
  enrol(subject: FactorSubject, binding: CeremonyBinding): Promise<PublicKeyCredentialCreationOptionsJSON> {
    return this.registrationOptions(subject, binding);
  }

  /** Second-factor options for the subject, bound to the context's interaction. */
  challenge(subject: FactorSubject, context: ChallengeContext): Promise<AuthenticationOptionsResult> {
    return this.authenticationOptions({ interactionId: context.interactionId, accountId: subject.accountId });
  }

  /**
   * Second-factor verification of the browser's JSON. The shared outcome has no room for
   * wrong_account or counter_regression (both become "invalid"; the latter is still logged): callers
   * that audit should use verifyAuthentication.
   */
  async verify(subject: FactorSubject, response: string, context: ChallengeContext): Promise<VerifyOutcome> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(response);
    } catch {
      return { ok: false, reason: 'invalid' };
    }
    const outcome = await this.verifyAuthentication(parsed, { interactionId: context.interactionId, accountId: subject.accountId });
    if (outcome.ok) return { ok: true, amr: outcome.amr };
    return { ok: false, reason: outcome.reason === 'no_challenge' ? 'no_challenge' : 'invalid' };
  }

  // ---- Helpers ------------------------------------------------------------------------------------

  private relyingParty(): RelyingParty {
    if (!this.deps.relyingParty) throw new Error('WebAuthn has no relying party: pass relyingParty to createFactors');
    return this.deps.relyingParty;
  }

  private async passkeys(accountId: string): Promise<PasskeyCredential[]> {
    return this.credentials.find({ accountId, type: 'webauthn' }).sort({ createdAt: 1, _id: 1 }).toArray();
  }

  /** The browser's timeout hint: the time the challenge has left. */
  private timeoutMs(expiresAt: Date): number {
    return Math.max(1000, expiresAt.getTime() - this.deps.clock.now().getTime());
  }

  /** The library's reason (wrong origin, RP ID, challenge, signature…) helps operators; it holds no secret. */
  private refused(message: string, accountId: string, credentialId: string, err: unknown): void {
    this.deps.log.info({ accountId, credentialId, why: err instanceof Error ? err.message : String(err) }, message);
  }
}

function challengeBytes(challenge: string): Uint8Array<ArrayBuffer> {
  // Bytes, not the string: the library would UTF-8-encode a string and the browser would sign that.
  return new Uint8Array(Buffer.from(challenge, 'base64url'));
}
