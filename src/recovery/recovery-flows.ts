/**
 * A password recovery in progress: which account it is for (or none — a flow for an identifier that
 * matched nothing looks and behaves the same but can never succeed), which channel the passcode went
 * to, and how far it got. The id lives only in an HttpOnly cookie; the document expires with the flow.
 */
import { randomBytes } from 'node:crypto';
import { Schema, type Connection, type Model } from 'mongoose';

export type RecoveryChannel = 'email' | 'sms';
/** `setting`: a new password is being set right now (claimed, so two tabs cannot both set one). */
export type RecoveryStep = 'verify' | 'new-password' | 'setting';

export interface RecoveryFlow {
  _id: string;
  /** null when the identifier matched no usable account. */
  accountId: string | null;
  /** A keyed hash of the identifier typed: rate limits and guess windows count per identifier, known or not. */
  identifierKey: string;
  channel: RecoveryChannel;
  step: RecoveryStep;
  /** Wrong answers in this flow (each is also counted against the account's guess window). */
  attempts: number;
  expiresAt: Date;
}

const schema = new Schema<RecoveryFlow>(
  {
    _id: String,
    accountId: { type: String, default: null },
    identifierKey: { type: String, required: true },
    channel: { type: String, enum: ['email', 'sms'], required: true },
    step: { type: String, enum: ['verify', 'new-password', 'setting'], required: true },
    attempts: { type: Number, default: 0 },
    expiresAt: { type: Date, required: true },
  },
  { collection: 'recovery_flows', versionKey: false },
);
schema.index({ expiresAt: 1 }, { expireAfterSeconds: 0, name: 'expiresAt_ttl' });

export class RecoveryFlows {
  readonly model: Model<RecoveryFlow>;

  constructor(connection: Connection) {
    this.model = (connection.models.RecoveryFlow as Model<RecoveryFlow> | undefined) ?? connection.model<RecoveryFlow>('RecoveryFlow', schema);
  }

  async create(flow: RecoveryFlow): Promise<void> {
    await this.model.create(flow);
  }

  async get(id: string, now: Date): Promise<RecoveryFlow | null> {
    const flow = await this.model.findById(id).lean<RecoveryFlow>().exec();
    return flow && flow.expiresAt > now ? flow : null;
  }

  /** Takes one answer attempt (atomically, so parallel posts cannot exceed the cap); null when none is left. */
  async takeAttempt(id: string, maxAttempts: number, now: Date): Promise<RecoveryFlow | null> {
    return this.model
      .findOneAndUpdate({ _id: id, step: 'verify', attempts: { $lt: maxAttempts }, expiresAt: { $gt: now } }, { $inc: { attempts: 1 } }, { returnDocument: 'after' })
      .lean<RecoveryFlow>()
      .exec();
  }

  /**
   * Verified: the flow moves on under a new id (returned, for a new cookie), so an id planted or seen
   * before verification is worth nothing afterwards.
   */
  async verified(id: string): Promise<string | null> {
    const flow = await this.model.findOneAndDelete({ _id: id, step: 'verify' }).lean<RecoveryFlow>().exec();
    if (!flow) return null;
    const next = randomBytes(24).toString('base64url');
    await this.model.create({ ...flow, _id: next, step: 'new-password' });
    return next;
  }

  /** Claims a verified flow for setting its password; null if another request has it (or it is gone). */
  async claim(id: string, now: Date): Promise<RecoveryFlow | null> {
    return this.model.findOneAndUpdate({ _id: id, step: 'new-password', expiresAt: { $gt: now } }, { $set: { step: 'setting' } }, { returnDocument: 'after' }).lean<RecoveryFlow>().exec();
  }

  /** Gives a claimed flow back (the password was refused as too weak: the person tries another). */
  async release(id: string): Promise<void> {
    await this.model.updateOne({ _id: id, step: 'setting' }, { $set: { step: 'new-password' } }).exec();
  }

  /** Ends the flow; true only for the one caller that ended it (a password is set once per flow). */
  async finish(id: string): Promise<boolean> {
    return (await this.model.deleteOne({ _id: id }).exec()).deletedCount === 1;
  }
}
