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
  private readonly maxInFlight: number;
  private readonly maxBatch: number;

  constructor(
    private readonly run: BatchRunner<T, R>,
    options: GroupCommitOptions = {},
  ) {
    this.maxInFlight = options.maxInFlight ?? 1;
    this.maxBatch = options.maxBatch ?? 500;
  }

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Operations waiting for a batch (for tests and diagnostics). */
  get waiting(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    // setImmediate rather than a microtask: requests whose data arrived in the same turn of the event loop
    // all reach this point before it runs, and join the same batch.
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      this.send(batch).finally(() => {
        this.inFlight--;
        this.schedule();
      });
    }
  }

  private async send(batch: Waiting<T, R>[]): Promise<void> {
    let outcomes: BatchOutcome<R>[];
    try {
      outcomes = await this.run(batch.map((w) => w.item));
      if (outcomes.length !== batch.length) throw new Error(`group commit: ${outcomes.length} outcomes for ${batch.length} operations`);
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    batch.forEach((w, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) w.resolve(outcome.value);
      else w.reject(outcome.error);
    });
  }
}

/**
 * Which operations of an unordered bulk write (insertMany, bulkWrite) failed, by their index in it, when the
 * database tried every one and reported each failure; undefined when the command failed as a whole (network,
 * write concern), which fails them all.
 */
export function failedBulkIndexes(err: unknown): Set<number> | undefined {
  if (!(err instanceof mongo.MongoBulkWriteError) || err.writeConcernError) return undefined;
  const indexes = new Set([err.writeErrors].flat().map((writeError) => writeError.index));
  return indexes.size > 0 ? indexes : undefined;
}
