/**
 * What a sign-in interaction has achieved so far, between its pages: which account passed the password
 * step, which factors were verified, where enrolment stands. One document per oidc-provider
 * interaction, expiring with it. Nothing here is a secret (codes and keys live with their factors).
 *
 * The login result is handed to oidc-provider only when the flow decides every required step is done;
 * until then this document is the only record that the password was right.
 */
import { Schema, type Connection, type Model } from 'mongoose';

export const SIGN_IN_STEPS = [
  'second-factor',
  'enrol-profile',
  'enrol-security-code',
  'enrol-phone',
  'enrol-phone-verify',
  'enrol-totp',
  'enrol-method',
  'enrol-recovery-codes',
] as const;
export type SignInStep = (typeof SIGN_IN_STEPS)[number];

export type SecondFactorMethod = 'email-otp' | 'sms-otp' | 'totp' | 'webauthn' | 'recovery-codes';

export interface SignInState {
  _id: string; // the interaction uid
  accountId: string;
  /** When the password was verified in this interaction; absent for step-up on an existing session. */
  passwordAt?: Date | null;
  step: SignInStep;
  /** RFC 8176 values earned so far, in order. */
  amr: string[];
  /** The method the second-factor page is currently showing. */
  method?: SecondFactorMethod | null;
  /** Where the current code was sent, masked (e.g. j•••@example.com), for the page to say. */
  destination?: string | null;
  /** Whether the second-factor step may be skipped by deferring enrolment. */
  deferralAllowed: boolean;
  /** Enrolment progress: a phone number awaiting its verification code, whether TOTP was confirmed. */
  pendingPhone?: string | null;
  totpConfirmed?: boolean;
  /** Methods the second-factor step must not offer (recovery codes just shown at enrolment). */
  excludeMethods?: SecondFactorMethod[];
  /** The mobile number was verified in this interaction (else a leftover verification is not trusted). */
  phoneVerifiedHere?: boolean;
  /** A passkey was registered at the enrolment's default-method step (only after a possession factor was proven here). */
  passkeyAddedHere?: boolean;
  /** Step-up: when the session's original sign-in happened, kept as the new login's auth_time. */
  authTime?: Date | null;
  expiresAt: Date;
}

const stateSchema = new Schema<SignInState>(
  {
    _id: { type: String, required: true },
    accountId: { type: String, required: true },
    passwordAt: { type: Date, default: null },
    step: { type: String, enum: SIGN_IN_STEPS, required: true },
    amr: { type: [String], default: [] },
    method: { type: String, default: null },
    destination: { type: String, default: null },
    deferralAllowed: { type: Boolean, default: false },
    pendingPhone: { type: String, default: null },
    totpConfirmed: { type: Boolean, default: false },
    excludeMethods: { type: [String], default: [] },
    phoneVerifiedHere: { type: Boolean, default: false },
    passkeyAddedHere: { type: Boolean, default: false },
    authTime: { type: Date, default: null },
    expiresAt: { type: Date, required: true },
  },
  { collection: 'signin_states', versionKey: false, timestamps: true },
);
stateSchema.index({ expiresAt: 1 }, { expireAfterSeconds: 0, name: 'expiresAt_ttl' });

export class SignInStates {
  readonly model: Model<SignInState>;

  constructor(connection: Connection) {
    this.model = (connection.models.SignInState as Model<SignInState> | undefined) ?? connection.model<SignInState>('SignInState', stateSchema);
  }

  /** The state of this interaction, if it is still alive and belongs to the expected account. */
  async get(uid: string, now: Date): Promise<SignInState | null> {
    const state = await this.model.findById(uid).lean<SignInState>().exec();
    return state && state.expiresAt > now ? state : null;
  }

  /**
   * `get`, together with the account the state names as stored in `accountsCollection` (raw, for the caller to
   * hydrate), in one round trip: `$lookup` on the accounts' unique `accountId` index. `account` is null when
   * the account is gone.
   */
  async getWithAccount(uid: string, now: Date, accountsCollection: string): Promise<{ state: SignInState; account: Record<string, unknown> | null } | null> {
    const [found] = await this.model
      .aggregate<SignInState & { _account: Array<Record<string, unknown>> }>([
        { $match: { _id: uid } },
        { $lookup: { from: accountsCollection, localField: 'accountId', foreignField: 'accountId', as: '_account' } },
      ])
      .exec();
    if (!found || !(found.expiresAt > now)) return null;
    const { _account: accounts, ...state } = found;
    return { state, account: accounts[0] ?? null };
  }

  async start(state: SignInState): Promise<SignInState> {
    await this.model.replaceOne({ _id: state._id }, state, { upsert: true }).exec();
    return state;
  }

  /** Applies a change and returns the new state; `null` if the interaction's state is gone. */
  async update(uid: string, change: Partial<Omit<SignInState, '_id' | 'accountId'>>, addAmr: string[] = []): Promise<SignInState | null> {
    const update: Record<string, unknown> = { $set: change };
    if (addAmr.length) update.$addToSet = { amr: { $each: addAmr } };
    return this.model.findOneAndUpdate({ _id: uid }, update, { returnDocument: 'after' }).lean<SignInState>().exec();
  }

  async finish(uid: string): Promise<void> {
    await this.model.deleteOne({ _id: uid }).exec();
  }

  /** Removes the state and returns what it held, in one atomic command; `null` if it was gone already. */
  async take(uid: string): Promise<SignInState | null> {
    return this.model.findOneAndDelete({ _id: uid }).lean<SignInState>().exec();
  }
}
