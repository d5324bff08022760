/**
 * Group commit (src/db/group-commit.ts): what waits, what goes together, and who learns which outcome.
 */
import { GroupCommit, type BatchOutcome } from '../../src/db/group-commit.js';

/** A runner whose batches the test answers by hand. */
function manualRunner<T>() {
  const batches: { items: T[]; answer: (outcomes: BatchOutcome<string>[] | Error) => void }[] = [];
  const run = (items: T[]) =>
    new Promise<BatchOutcome<string>[]>((resolve, reject) => {
      batches.push({ items, answer: (o) => (o instanceof Error ? reject(o) : resolve(o)) });
    });
  return { batches, run };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
const done = (items: number[]) => items.map((i) => ({ ok: true as const, value: `v${i}` }));

test('an operation with nothing in flight goes out on the next turn, alone', async () => {
  const { batches, run } = manualRunner<number>();
  const commit = new GroupCommit(run);
  const first = commit.submit(1);
  await tick();
  expect(batches.map((b) => b.items)).toEqual([[1]]);
  batches[0]!.answer(done([1]));
  await expect(first).resolves.toBe('v1');
});

test('operations started while a batch is in flight wait for it, then go together as one batch', async () => {
  const { batches, run } = manualRunner<number>();
  const commit = new GroupCommit(run);
  const results = [commit.submit(1)];
  await tick();
  for (let i = 2; i <= 6; i++) results.push(commit.submit(i));
  await tick();
  expect(batches).toHaveLength(1); // still waiting for the first
  expect(commit.waiting).toBe(5);
  batches[0]!.answer(done([1]));
  await tick();
  await tick();
  expect(batches.map((b) => b.items)).toEqual([[1], [2, 3, 4, 5, 6]]);
  batches[1]!.answer(done([2, 3, 4, 5, 6]));
  await expect(Promise.all(results)).resolves.toEqual(['v1', 'v2', 'v3', 'v4', 'v5', 'v6']);
});

test('operations started in the same turn share the first batch', async () => {
  const { batches, run } = manualRunner<number>();
  const commit = new GroupCommit(run);
  const results = [1, 2, 3].map((i) => commit.submit(i));
  await tick();
  expect(batches.map((b) => b.items)).toEqual([[1, 2, 3]]);
  batches[0]!.answer(done([1, 2, 3]));
  await expect(Promise.all(results)).resolves.toEqual(['v1', 'v2', 'v3']);
});

test('each operation gets its own outcome: one failure is not another’s', async () => {
  const { batches, run } = manualRunner<number>();
  const commit = new GroupCommit(run);
  const results = [1, 2, 3].map((i) => commit.submit(i).then((v) => ({ v }), (e: Error) => ({ e: e.message })));
  await tick();
  batches[0]!.answer([{ ok: true, value: 'v1' }, { ok: false, error: new Error('no 2') }, { ok: true, value: 'v3' }]);
  await expect(Promise.all(results)).resolves.toEqual([{ v: 'v1' }, { e: 'no 2' }, { v: 'v3' }]);
});

test('a batch that fails as a whole fails every operation in it, and the next batch still goes', async () => {
  const { batches, run } = manualRunner<number>();
  const commit = new GroupCommit(run);
  const failing = [commit.submit(1), commit.submit(2)];
  await tick();
  const later = commit.submit(3);
  batches[0]!.answer(new Error('connection reset'));
  await expect(failing[0]).rejects.toThrow('connection reset');
  await expect(failing[1]).rejects.toThrow('connection reset');
  await tick();
  expect(batches[1]!.items).toEqual([3]);
  batches[1]!.answer(done([3]));
  await expect(later).resolves.toBe('v3');
});

test('a runner answering the wrong number of outcomes fails the batch rather than guessing', async () => {
  const commit = new GroupCommit<number, string>(async () => [{ ok: true, value: 'only one' }]);
  const results = [commit.submit(1), commit.submit(2)];
  await expect(results[0]).rejects.toThrow(/1 outcomes for 2 operations/);
  await expect(results[1]).rejects.toThrow(/1 outcomes for 2 operations/);
});

test('batches are capped at maxBatch, and at most maxInFlight are on their way at once', async () => {
  const { batches, run } = manualRunner<number>();
  const commit = new GroupCommit(run, { maxBatch: 2, maxInFlight: 2 });
  const results = [1, 2, 3, 4, 5].map((i) => commit.submit(i));
  await tick();
  expect(batches.map((b) => b.items)).toEqual([[1, 2], [3, 4]]);
  batches[0]!.answer(done([1, 2]));
  await tick();
  await tick();
  expect(batches.map((b) => b.items)).toEqual([[1, 2], [3, 4], [5]]);
  batches[1]!.answer(done([3, 4]));
  batches[2]!.answer(done([5]));
  await expect(Promise.all(results)).resolves.toEqual(['v1', 'v2', 'v3', 'v4', 'v5']);
});

test('a batch that is not answered in time fails with the timeout error, and the next batch goes', async () => {
  const { batches, run } = manualRunner<number>();
  const commit = new GroupCommit(run, { timeoutMs: 50, timeoutError: () => new Error('no answer in time') });
  const stuck = commit.submit(1);
  await tick();
  const next = commit.submit(2);
  await expect(stuck).rejects.toThrow('no answer in time'); // batch 1 never answered
  await tick();
  expect(batches.map((b) => b.items)).toEqual([[1], [2]]);
  batches[1]!.answer(done([2]));
  await expect(next).resolves.toBe('v2');
  batches[0]!.answer(done([1])); // a late answer changes nothing
});

test('beyond maxWaiting a new operation fails at once with the overflow error', async () => {
  const { batches, run } = manualRunner<number>();
  const commit = new GroupCommit(run, { maxWaiting: 2, overflowError: () => new Error('too many waiting') });
  const first = [commit.submit(1), commit.submit(2)];
  await expect(commit.submit(3)).rejects.toThrow('too many waiting');
  await tick();
  batches[0]!.answer(done([1, 2]));
  await expect(Promise.all(first)).resolves.toEqual(['v1', 'v2']);
});

test('settled() waits for every operation submitted before it, whatever their outcome', async () => {
  const { batches, run } = manualRunner<number>();
  const commit = new GroupCommit(run);
  const ops = [commit.submit(1), commit.submit(2)].map((p) => p.catch(() => 'failed'));
  let settled = false;
  const waiting = commit.settled().then(() => (settled = true));
  await tick();
  expect(settled).toBe(false);
  batches[0]!.answer([{ ok: true, value: 'v1' }, { ok: false, error: new Error('x') }]);
  await waiting;
  expect(settled).toBe(true);
  await expect(Promise.all(ops)).resolves.toEqual(['v1', 'failed']);
  await expect(commit.settled()).resolves.toBeUndefined(); // nothing pending: at once
});

test('a runner answering with a hole in its outcomes fails the batch instead of leaving a caller waiting', async () => {
  const commit = new GroupCommit<number, string>(async () => {
    const outcomes: BatchOutcome<string>[] = [];
    outcomes[1] = { ok: true, value: 'second' };
    outcomes.length = 2;
    return outcomes;
  });
  const results = [commit.submit(1), commit.submit(2)];
  await expect(results[0]).rejects.toThrow(/outcomes for 2 operations/);
  await expect(results[1]).rejects.toThrow(/outcomes for 2 operations/);
});
