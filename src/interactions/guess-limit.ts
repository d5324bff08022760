/**
 * How many wrong second-factor answers an account may give in a window, across every interaction and
 * method. The slot is taken before the answer is checked (one atomic update), so parallel guesses
 * cannot slip past the limit, and starting a new sign-in does not reset it. A correct answer clears it, and
 * so does an administrator's unlock (`lift`). Only well-formed answers are counted (the caller checks the
 * shape first): junk can never be right, so it is no guess.
 */
import { Schema, type Connection, type Model } from 'mongoose';
import type { Clock } from '../factors/types.js';

interface GuessWindow {
  _id: string; // accountId
  count: number;
  expiresAt: Date;
}

const schema = new Schema<GuessWindow>({ _id: String, count: Number, expiresAt: Date }, { collection: 'mfa_guess_windows', versionKey: false });
schema.index({ expiresAt: 1 }, { expireAfterSeconds: 0, name: 'expiresAt_ttl' });

export class GuessLimit {
  readonly model: Model<GuessWindow>;

  constructor(
    connection: Connection,
    private readonly clock: Clock,
    readonly maxGuesses = 10,
    readonly windowSeconds = 15 * 60,
  ) {
    this.model = (connection.models.GuessWindow as Model<GuessWindow> | undefined) ?? connection.model<GuessWindow>('GuessWindow', schema);
  }

  /** Takes one guess for the account; false when its window is used up (nothing is checked then). */
  async take(accountId: string): Promise<boolean> {
    const now = this.clock.now();
    // Usually one round trip: a live window with room is counted, or a missing one is created. Only when a
    // window exists that is full or past its end does the expired one get removed and the count retried.
    if (await this.countGuess({ _id: accountId, count: { $lt: this.maxGuesses }, expiresAt: { $gt: now } }, now)) return true;
    await this.model.deleteOne({ _id: accountId, expiresAt: { $lte: now } }).exec();
    return this.countGuess({ _id: accountId, count: { $lt: this.maxGuesses } }, now);
  }

  /** Counts one guess in the window `filter` matches, creating the window if there is none. */
  private async countGuess(filter: Record<string, unknown>, now: Date): Promise<boolean> {
    try {
      const window = await this.model
        .findOneAndUpdate(filter, { $inc: { count: 1 }, $setOnInsert: { expiresAt: new Date(now.getTime() + this.windowSeconds * 1000) } }, { upsert: true, returnDocument: 'after' })
        .exec();
      return window !== null;
    } catch (err) {
      // A window exists that the filter excludes (full, or expired): the upsert collided with it.
      if ((err as { code?: number }).code === 11000) return false;
      throw err;
    }
  }

  /** Until when the account's guesses are used up (the pause), or null. A read only: it takes no guess. */
  async pausedUntil(accountId: string): Promise<Date | null> {
    const now = this.clock.now();
    const window = await this.model.findOne({ _id: accountId, count: { $gte: this.maxGuesses }, expiresAt: { $gt: now } }, { expiresAt: 1 }).lean<GuessWindow>().exec();
    return window?.expiresAt ?? null;
  }

  /** An administrator's unlock: ends the pause, if there is one; returns when it would have ended, or null. */
  async lift(accountId: string): Promise<Date | null> {
    const window = await this.model.findOneAndDelete({ _id: accountId, count: { $gte: this.maxGuesses }, expiresAt: { $gt: this.clock.now() } }).lean<GuessWindow>().exec();
    return window?.expiresAt ?? null;
  }

  async clear(accountId: string): Promise<void> {
    await this.model.deleteOne({ _id: accountId }).exec();
  }
}
