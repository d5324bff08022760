/**
 * Group commit: operations of one kind that are started while an earlier batch of the same kind is still
 * on its way to the database wait for it, and then go together, as one command. Under load, N requests
 * that each need a write (an access token, say) cost one round trip instead of N; with nothing else in
 * flight an operation goes out on the next turn of the event loop, alone, without waiting.
 *
 * Each caller's promise settles only when the command carrying its operation has been answered, with that
 * operation's own outcome: nothing is acknowledged before the database has it, and one operation's failure
 * is not another's.
 */
import { mongo } from 'mongoose';

/** One operation's outcome inside a batch: its value, or the error that operation alone failed with. */
export type BatchOutcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

/** Runs one batch as one command. Return one outcome per item, in order; throw to fail the whole batch. */
export type BatchRunner<T, R> = (items: T[]) => Promise<BatchOutcome<R>[]>;

export interface GroupCommitOptions {
  /** Batches of this kind on their way at once. 1 = strict group commit: the most batching. */
  maxInFlight?: number;
  /** The most operations in one command (MongoDB takes 100 000 per write command; documents add up to 48 MB). */
  maxBatch?: number;
  /**
   * A batch not answered within this time fails (its operations get `timeoutError()`), and the next batch
   * goes: one command that never returns (a half-open connection) must not hold back every later one.
   */
  timeoutMs?: number;
  /** Operations allowed to wait at once; beyond that a new one fails at once with `overflowError()`. */
  maxWaiting?: number;
  timeoutError?: () => unknown;
  overflowError?: () => unknown;
}

interface Waiting<T, R> {
  item: T;
  resolve: (value: R) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<T, R> {
  private queue: Waiting<T, R>[] = [];
  private inFlight = 0;
  private scheduled = false;
  /** Every operation not yet settled, for settled(). */
  private readonly unsettled = new Set<Promise<unknown>>();
  private readonly options: Required<GroupCommitOptions>;

  constructor(
    private readonly run: BatchRunner<T, R>,
    options: GroupCommitOptions = {},
  ) {
    this.options = {
      maxInFlight: 1,
      maxBatch: 500,
      timeoutMs: 10_000,
      maxWaiting: 10_000,
      timeoutError: () => new Error(`the database did not answer within ${this.options.timeoutMs} ms`),
      overflowError: () => new Error('too many database operations are waiting'),
      ...options,
    };
  }

  submit(item: T): Promise<R> {
    if (this.queue.length >= this.options.maxWaiting) return Promise.reject(this.options.overflowError());
    const promise = new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
    const tracked = promise.then(
      () => undefined,
      () => undefined,
    );
    this.unsettled.add(tracked);
    void tracked.then(() => this.unsettled.delete(tracked));
    return promise;
  }

  /**
   * Resolves once every operation submitted so far has its outcome. For a change that must not be overtaken
   * by an earlier queued one (a delete after a save of the same record).
   */
  async settled(): Promise<void> {
    if (this.unsettled.size > 0) await Promise.all([...this.unsettled]);
  }

  /** Operations waiting for a batch (for tests and diagnostics). */
  get waiting(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    // setImmediate rather than a microtask: requests whose data arrived in the same turn of the event loop
    // all reach this point before it runs, and join the same batch.
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.inFlight++;
      void this.send(batch).then(() => {
        this.inFlight--;
        this.schedule();
      });
    }
  }

  /** Runs one batch and settles each of its operations; never rejects. */
  private async send(batch: Waiting<T, R>[]): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.options.timeoutMs);
    });
    try {
      const outcomes = await Promise.race([this.run(batch.map((w) => w.item)), timedOut]);
      if (outcomes === 'timeout') throw this.options.timeoutError();
      if (outcomes.length !== batch.length || batch.some((_, i) => !outcomes[i])) {
        throw new Error(`group commit: ${outcomes.length} outcomes for ${batch.length} operations`);
      }
      batch.forEach((w, i) => {
        const outcome = outcomes[i]!;
        if (outcome.ok) w.resolve(outcome.value);
        else w.reject(outcome.error);
      });
    } catch (err) {
      for (const w of batch) w.reject(err); // a no-op for any already settled
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Which operations of an unordered bulk write (insertMany, bulkWrite) failed, by their index in it, when the
 * database tried every one and reported each failure; undefined when the command failed as a whole (network,
 * write concern), which fails them all.
 */
export function failedBulkIndexes(err: unknown): Set<number> | undefined {
  if (!(err instanceof mongo.MongoBulkWriteError)) return undefined;
  // A write concern that was not met leaves every operation in doubt.
  if (err.result?.getWriteConcernError?.()) return undefined;
  const indexes = new Set([err.writeErrors].flat().map((writeError) => writeError.index));
  return indexes.size > 0 ? indexes : undefined;
}
