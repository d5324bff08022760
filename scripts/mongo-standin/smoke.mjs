// Smoke test for the MongoDB stand-in (scripts/mongo-standin/standin.py).
// Usage: node scripts/mongo-standin/smoke.mjs
// Spawns the stand-in on port 0, drives it through mongoose, prints PASS/FAIL
// lines and exits non-zero if anything failed.
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mongoose from 'mongoose';

const here = dirname(fileURLToPath(import.meta.url));
const STANDIN = join(here, 'standin.py');
const PYTHON = process.env.STANDIN_PYTHON || '/usr/bin/python3';
const { Schema } = mongoose;
const { Binary, Long, Decimal128, ObjectId } = mongoose.mongo;

let failures = 0;
let passes = 0;

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function test(name, fn) {
  try {
    await withTimeout(Promise.resolve().then(fn), 30000, name);
    passes++;
    console.log(`PASS ${name}`);
  } catch (err) {
    failures++;
    console.log(`FAIL ${name}`);
    console.log(String(err && err.stack ? err.stack : err).replace(/^/gm, '    '));
  }
}

function startStandin(extraArgs = []) {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      PYTHON,
      [STANDIN, '--port', '0', '--parent-pid', String(process.pid), ...extraArgs],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let errText = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`stand-in did not start in time; stderr:\n${errText}`));
    }, 15000);
    proc.stderr.on('data', (d) => {
      errText += d;
      if (process.env.STANDIN_DEBUG) process.stderr.write(d);
    });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /^STANDIN READY port=(\d+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]), stderr: () => errText });
      }
    });
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`stand-in exited early (${code ?? signal}); stderr:\n${errText}`));
    });
  });
}

async function stopStandin(si) {
  if (si.proc.exitCode !== null || si.proc.signalCode !== null) return si.proc.exitCode;
  const exited = new Promise((resolve) => si.proc.once('exit', (code) => resolve(code)));
  si.proc.kill('SIGTERM');
  return withTimeout(exited, 10000, 'stand-in exit after SIGTERM');
}

function uri(port, db) {
  return `mongodb://127.0.0.1:${port}/${db}?directConnection=true`;
}

async function connect(port, db, opts = {}) {
  return mongoose
    .createConnection(uri(port, db), { serverSelectionTimeoutMS: 5000, ...opts })
    .asPromise();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const si = await startStandin();
  console.log(`stand-in listening on port ${si.port}`);
  const commands = [];
  let conn;

  await test('connect + ping + buildInfo', async () => {
    conn = await connect(si.port, 'smoke', { monitorCommands: true });
    conn.getClient().on('commandStarted', (ev) => commands.push(ev.commandName));
    const ping = await conn.db.admin().ping();
    assert.equal(ping.ok, 1);
    const info = await conn.db.admin().buildInfo();
    assert.match(info.version, /^\d+\.\d+/);
  });

  const userSchema = new Schema({
    email: { type: String, required: true, unique: true },
    name: String,
    n: { type: Number, default: 0 },
    tags: [String],
    blob: Buffer,
    at: Date,
  });
  const sessionSchema = new Schema({
    sid: { type: String, index: true },
    expiresAt: { type: Date, expires: 0 },
  });
  const counterSchema = new Schema({ _id: String, seq: Number });
  const itemSchema = new Schema({ i: Number, group: String, price: Number });
  let User, Sess, Counter, Item;

  await test('models init + syncIndexes (unique + TTL), idempotent', async () => {
    User = conn.model('User', userSchema);
    Sess = conn.model('Sess', sessionSchema);
    Counter = conn.model('Counter', counterSchema);
    Item = conn.model('Item', itemSchema);
    await Promise.all([User.init(), Sess.init(), Counter.init(), Item.init()]);
    await User.syncIndexes();
    await Sess.syncIndexes();
    await User.syncIndexes(); // second time: nothing to do, must not fail
    await User.createIndexes(); // createIndexes with an identical spec must succeed
    const uidx = await User.listIndexes();
    const email = uidx.find((i) => i.name === 'email_1');
    assert.ok(email, 'email_1 index exists');
    assert.equal(email.unique, true);
    const sidx = await Sess.listIndexes();
    const ttl = sidx.find((i) => i.name === 'expiresAt_1');
    assert.ok(ttl, 'expiresAt_1 index exists');
    assert.equal(ttl.expireAfterSeconds, 0);
    const names = (await conn.db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);
    for (const n of ['users', 'sesses', 'counters', 'items']) assert.ok(names.includes(n), `${n} listed`);
    const filtered = await conn.db.listCollections({ name: 'users' }).toArray();
    assert.equal(filtered.length, 1);
  });

  await test('create / find / findOne', async () => {
    await User.create({ email: 'a@example.com', name: 'Alice', tags: ['x'] });
    await User.create([{ email: 'b@example.com', name: 'Bob' }, { email: 'c@example.com', name: 'Carol' }]);
    const all = await User.find().sort({ email: -1 }).lean();
    assert.deepEqual(all.map((u) => u.email), ['c@example.com', 'b@example.com', 'a@example.com']);
    const one = await User.findOne({ name: 'Bob' });
    assert.equal(one.email, 'b@example.com');
    assert.ok(one._id instanceof ObjectId);
    const proj = await User.find({}, { email: 1, _id: 0 }).sort({ email: 1 }).skip(1).limit(1).lean();
    assert.deepEqual(proj, [{ email: 'b@example.com' }]);
    const none = await User.findOne({ email: 'nobody' });
    assert.equal(none, null);
    const byRegex = await User.find({ email: /^[ab]@/ }).lean();
    assert.equal(byRegex.length, 2);
  });

  await test('findOneAndUpdate with upsert and $inc', async () => {
    const first = await Counter.findOneAndUpdate({ _id: 'c1' }, { $inc: { seq: 1 } }, { upsert: true, returnDocument: 'after' });
    assert.equal(first.seq, 1);
    const second = await Counter.findOneAndUpdate({ _id: 'c1' }, { $inc: { seq: 1 } }, { upsert: true, returnDocument: 'after' });
    assert.equal(second.seq, 2);
    const before = await Counter.findOneAndUpdate({ _id: 'c1' }, { $inc: { seq: 5 } }, { returnDocument: 'before' });
    assert.equal(before.seq, 2);
    const res = await Counter.findOneAndUpdate(
      { _id: 'c2' },
      { $setOnInsert: { seq: 100 } },
      { upsert: true, returnDocument: 'after', includeResultMetadata: true },
    );
    assert.equal(res.value.seq, 100);
    assert.equal(res.lastErrorObject.updatedExisting, false);
    assert.equal(res.lastErrorObject.upserted, 'c2');
    const missing = await Counter.findOneAndUpdate({ _id: 'nope' }, { $inc: { seq: 1 } }, { returnDocument: 'after' });
    assert.equal(missing, null);
    const removed = await Counter.findOneAndDelete({ _id: 'c2' });
    assert.equal(removed.seq, 100);
    assert.equal(await Counter.countDocuments({ _id: 'c2' }), 0);
  });

  await test('50 concurrent $inc -> exactly +50', async () => {
    await Counter.create({ _id: 'race', seq: 0 });
    await Promise.all(
      Array.from({ length: 50 }, () =>
        Counter.findOneAndUpdate({ _id: 'race' }, { $inc: { seq: 1 } }, { returnDocument: 'after' })),
    );
    const doc = await Counter.findById('race').lean();
    assert.equal(doc.seq, 50);
    await Promise.all(Array.from({ length: 50 }, () => Counter.updateOne({ _id: 'race' }, { $inc: { seq: 1 } })));
    assert.equal((await Counter.findById('race').lean()).seq, 100);
  });

  await test('duplicate insert -> E11000 (code 11000, keyValue)', async () => {
    let err;
    try {
      await User.create({ email: 'a@example.com', name: 'dup' });
    } catch (e) {
      err = e;
    }
    assert.ok(err, 'duplicate insert must fail');
    assert.equal(err.code, 11000);
    assert.match(err.message, /E11000 duplicate key error/);
    assert.deepEqual(err.keyValue, { email: 'a@example.com' });
    assert.deepEqual(err.keyPattern, { email: 1 });
    // unique violation through an update
    let err2;
    try {
      await User.updateOne({ email: 'b@example.com' }, { $set: { email: 'c@example.com' } });
    } catch (e) {
      err2 = e;
    }
    assert.ok(err2, 'duplicate update must fail');
    assert.equal(err2.code, 11000);
    assert.equal((await User.findOne({ name: 'Bob' }).lean()).email, 'b@example.com');
    // and through findOneAndUpdate
    await assert.rejects(
      User.findOneAndUpdate({ email: 'b@example.com' }, { $set: { email: 'a@example.com' } }),
      (e) => e.code === 11000,
    );
    // unordered insertMany keeps going after the duplicate
    let err3;
    try {
      await User.insertMany(
        [{ email: 'd@example.com' }, { email: 'a@example.com' }, { email: 'e@example.com' }],
        { ordered: false },
      );
    } catch (e) {
      err3 = e;
    }
    assert.ok(err3);
    assert.equal(err3.code, 11000);
    assert.equal(await User.countDocuments({ email: { $in: ['d@example.com', 'e@example.com'] } }), 2);
  });

  await test('TTL: expired doc disappears within 2 s', async () => {
    await Sess.create({ sid: 'old', expiresAt: new Date(Date.now() - 60_000) });
    await Sess.create({ sid: 'fresh', expiresAt: new Date(Date.now() + 3_600_000) });
    const deadline = Date.now() + 2000;
    let sids;
    do {
      sids = (await Sess.find().lean()).map((s) => s.sid);
      if (!sids.includes('old')) break;
      await sleep(100);
    } while (Date.now() < deadline);
    assert.deepEqual(sids, ['fresh']);
  });

  await test('updateMany / deleteMany / countDocuments / distinct / aggregate $group', async () => {
    await Item.insertMany(
      Array.from({ length: 20 }, (_, i) => ({ i, group: i % 2 ? 'odd' : 'even', price: i })),
    );
    const upd = await Item.updateMany({ group: 'odd' }, { $set: { flagged: true } }, { strict: false });
    assert.equal(upd.matchedCount, 10);
    assert.equal(upd.modifiedCount, 10);
    const up = await Item.updateOne({ i: 999 }, { $set: { group: 'new' } }, { upsert: true });
    assert.equal(up.upsertedCount, 1);
    assert.ok(up.upsertedId);
    assert.equal(await Item.countDocuments({ group: 'odd' }), 10);
    assert.equal(await Item.countDocuments(), 21);
    assert.equal(await Item.estimatedDocumentCount(), 21);
    const groups = (await Item.distinct('group')).sort();
    assert.deepEqual(groups, ['even', 'new', 'odd']);
    const agg = await Item.aggregate([
      { $match: { group: { $in: ['odd', 'even'] } } },
      { $group: { _id: '$group', total: { $sum: '$price' }, n: { $sum: 1 } } },
      { $sort: { _id: 1 } },
    ]);
    assert.deepEqual(agg, [
      { _id: 'even', total: 90, n: 10 },
      { _id: 'odd', total: 100, n: 10 },
    ]);
    const del = await Item.deleteMany({ group: 'even' });
    assert.equal(del.deletedCount, 10);
    const del1 = await Item.deleteOne({ group: 'odd' });
    assert.equal(del1.deletedCount, 1);
    assert.equal(await Item.countDocuments(), 10);
    const [{ c }] = await Item.aggregate([{ $count: 'c' }]);
    assert.equal(c, 10);
  });

  await test('aggregate $lookup / $unwind / $project / $addFields', async () => {
    const orders = conn.db.collection('orders');
    const customers = conn.db.collection('customers');
    await customers.insertMany([{ _id: 1, name: 'Ann' }, { _id: 2, name: 'Ben' }]);
    await orders.insertMany([{ cust: 1, amt: 5 }, { cust: 1, amt: 7 }, { cust: 2, amt: 1 }]);
    const rows = await orders
      .aggregate([
        { $lookup: { from: 'customers', localField: 'cust', foreignField: '_id', as: 'c' } },
        { $unwind: '$c' },
        { $addFields: { who: '$c.name' } },
        { $project: { _id: 0, who: 1, amt: 1 } },
        { $sort: { amt: 1 } },
        { $skip: 1 },
        { $limit: 5 },
      ])
      .toArray();
    assert.deepEqual(rows, [{ amt: 5, who: 'Ann' }, { amt: 7, who: 'Ann' }]);
  });

  await test('update operators ($set $unset $push $pull $addToSet $min $max $currentDate $rename, replace)', async () => {
    const col = conn.db.collection('ops');
    const { insertedId } = await col.insertOne({ a: 1, b: 2, arr: [1, 2, 3], lo: 5, hi: 5, old: 'x' });
    await col.updateOne(
      { _id: insertedId },
      {
        $set: { 'nested.k': 'v' },
        $unset: { b: '' },
        $push: { arr: 4 },
        $addToSet: { set: 'q' },
        $min: { lo: 1 },
        $max: { hi: 9 },
        $currentDate: { touched: true },
        $rename: { old: 'renamed' },
        $inc: { a: 2 },
      },
    );
    await col.updateOne({ _id: insertedId }, { $pull: { arr: 2 }, $addToSet: { set: 'q' } });
    const d = await col.findOne({ _id: insertedId });
    assert.equal(d.a, 3);
    assert.equal('b' in d, false);
    assert.deepEqual(d.arr, [1, 3, 4]);
    assert.deepEqual(d.set, ['q']);
    assert.equal(d.lo, 1);
    assert.equal(d.hi, 9);
    assert.ok(d.touched instanceof Date);
    assert.equal(d.renamed, 'x');
    assert.equal(d.nested.k, 'v');
    const r = await col.replaceOne({ _id: insertedId }, { only: true });
    assert.equal(r.modifiedCount, 1);
    assert.deepEqual(await col.findOne({ _id: insertedId }), { _id: insertedId, only: true });
  });

  await test('cursor over 500 docs with batchSize 50 uses getMore', async () => {
    const Big = conn.model('Big', new Schema({ i: Number }));
    await Big.insertMany(Array.from({ length: 500 }, (_, i) => ({ i })));
    const before = commands.filter((c) => c === 'getMore').length;
    let count = 0;
    let last = -1;
    for await (const doc of Big.find().sort({ i: 1 }).batchSize(50).cursor()) {
      assert.equal(doc.i, last + 1);
      last = doc.i;
      count++;
    }
    assert.equal(count, 500);
    const getMores = commands.filter((c) => c === 'getMore').length - before;
    assert.ok(getMores >= 9, `expected >= 9 getMore, saw ${getMores}`);
    // early close -> killCursors
    const cur = Big.find().batchSize(10).cursor();
    await cur.next();
    await cur.close();
    assert.ok(commands.includes('killCursors'));
    // default batch size (101) via plain find
    assert.equal((await Big.find().lean()).length, 500);
  });

  await test('collection drop', async () => {
    await conn.db.collection('todrop').insertOne({ x: 1 });
    let names = (await conn.db.listCollections().toArray()).map((c) => c.name);
    assert.ok(names.includes('todrop'));
    assert.equal(await conn.dropCollection('todrop'), true);
    names = (await conn.db.listCollections().toArray()).map((c) => c.name);
    assert.ok(!names.includes('todrop'));
    assert.equal(await conn.db.collection('todrop').countDocuments(), 0);
  });

  await test('BSON round-trip: Date, Binary 0/4, Long, Decimal128, nested', async () => {
    const when = new Date('2024-02-29T12:34:56.789Z');
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    await User.create({ email: 'bin@example.com', blob: bytes, at: when });
    const u = await User.findOne({ email: 'bin@example.com' });
    assert.ok(Buffer.isBuffer(u.blob));
    assert.deepEqual(Buffer.from(u.blob), bytes);
    assert.equal(u.at.toISOString(), when.toISOString());
    assert.equal((await User.countDocuments({ at: { $gte: new Date('2024-01-01') } })), 1);

    const raw = conn.db.collection('raw');
    const uuid = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
    const doc = {
      b0: new Binary(bytes, 0),
      b4: new Binary(uuid, 4),
      l: Long.fromString('9007199254740993'),
      dec: Decimal128.fromString('1.10'),
      nested: { arr: [1, 'two', { when }, [true, null]] },
    };
    const { insertedId } = await raw.insertOne(doc);
    const back = await raw.findOne({ _id: insertedId }, { promoteBuffers: false, promoteLongs: false });
    assert.equal(back.b0.sub_type, 0);
    assert.deepEqual(Buffer.from(back.b0.buffer), bytes);
    assert.equal(back.b4.sub_type, 4);
    assert.deepEqual(Buffer.from(back.b4.buffer), uuid);
    assert.ok(back.l instanceof Long, 'Long stays int64');
    assert.equal(back.l.toString(), '9007199254740993');
    assert.equal(back.dec.toString(), '1.10');
    assert.equal(back.nested.arr[2].when.toISOString(), when.toISOString());
    assert.deepEqual(back.nested.arr[3], [true, null]);
    assert.equal(await raw.countDocuments({ b4: new Binary(uuid, 4) }), 1);
  });

  await test('transaction via connection.transaction() commits', async () => {
    await conn.transaction(async (session) => {
      await User.create([{ email: 'tx1@example.com' }], { session });
      await Counter.updateOne({ _id: 'race' }, { $inc: { seq: 1 } }, { session });
    });
    assert.ok(await User.findOne({ email: 'tx1@example.com' }));
    assert.equal((await Counter.findById('race').lean()).seq, 101);
  });

  await test('transaction that aborts leaves no changes', async () => {
    const session = await conn.startSession();
    await assert.rejects(
      session.withTransaction(async () => {
        await User.create([{ email: 'tx2@example.com' }], { session });
        await Counter.updateOne({ _id: 'race' }, { $inc: { seq: 1000 } }, { session });
        await User.deleteOne({ email: 'a@example.com' }, { session });
        throw new Error('boom');
      }),
      /boom/,
    );
    await session.endSession();
    assert.equal(await User.findOne({ email: 'tx2@example.com' }), null);
    assert.equal((await Counter.findById('race').lean()).seq, 101);
    assert.ok(await User.findOne({ email: 'a@example.com' }));
    // explicit abortTransaction
    const s2 = await conn.startSession();
    s2.startTransaction();
    await Counter.updateOne({ _id: 'race' }, { $inc: { seq: 7 } }, { session: s2 });
    await s2.abortTransaction();
    await s2.endSession();
    assert.equal((await Counter.findById('race').lean()).seq, 101);
  });

  await test('unknown command -> error, not a hang', async () => {
    await assert.rejects(
      withTimeout(conn.db.command({ fooBar: 1 }), 5000, 'fooBar'),
      (e) => e.code === 59 && /no such command/.test(e.message),
    );
    // the server is still fine afterwards
    assert.equal((await conn.db.admin().ping()).ok, 1);
  });

  await test('separate databases by name', async () => {
    const other = conn.useDb('smoke_other');
    await other.collection('users').insertOne({ email: 'a@example.com' });
    assert.equal(await other.collection('users').countDocuments(), 1);
    assert.ok((await User.countDocuments()) > 1);
    const dbs = (await conn.db.admin().listDatabases()).databases.map((d) => d.name);
    assert.ok(dbs.includes('smoke') && dbs.includes('smoke_other'));
    await other.dropDatabase();
    const dbs2 = (await conn.db.admin().listDatabases()).databases.map((d) => d.name);
    assert.ok(!dbs2.includes('smoke_other'));
  });

  if (conn) await conn.close();
  const code = await stopStandin(si);
  await test('stand-in exits cleanly on SIGTERM', async () => {
    assert.equal(code, 0);
  });

  // ---- persistence ------------------------------------------------------
  const dir = mkdtempSync(join(tmpdir(), 'standin-smoke-'));
  const dataFile = join(dir, 'data.bson');
  try {
    await test('persistence: data + unique index survive a restart', async () => {
      const when = new Date('2023-05-06T07:08:09.010Z');
      const s1 = await startStandin(['--data-file', dataFile]);
      const c1 = await connect(s1.port, 'persist');
      const P = c1.model('P', new Schema({ key: { type: String, unique: true }, at: Date, blob: Buffer }));
      await P.init();
      await P.create([{ key: 'k1', at: when, blob: Buffer.from('hi') }, { key: 'k2' }]);
      await P.updateOne({ key: 'k2' }, { $set: { extra: 42 } }, { strict: false });
      await c1.close();
      assert.equal(await stopStandin(s1), 0);
      assert.ok(existsSync(dataFile), 'data file written');

      const s2 = await startStandin(['--data-file', dataFile]);
      const c2 = await connect(s2.port, 'persist');
      const P2 = c2.model('P', new Schema({ key: { type: String, unique: true }, at: Date, blob: Buffer }, { strict: false }));
      const docs = await P2.find().sort({ key: 1 }).lean();
      assert.equal(docs.length, 2);
      assert.equal(docs[0].at.toISOString(), when.toISOString());
      assert.equal(Buffer.from(docs[0].blob.buffer ?? docs[0].blob).toString(), 'hi');
      assert.equal(docs[1].extra, 42);
      const idx = await P2.listIndexes();
      assert.ok(idx.find((i) => i.name === 'key_1' && i.unique));
      await assert.rejects(P2.create({ key: 'k1' }), (e) => e.code === 11000);
      await c2.close();
      assert.equal(await stopStandin(s2), 0);
    });

    await test('--parent-pid: stand-in exits when its parent is gone', async () => {
      // a short-lived intermediate parent: a node process that spawns the stand-in and exits
      const child = spawn(
        process.execPath,
        [
          '-e',
          `const {spawn}=require('child_process');` +
            `const p=spawn(${JSON.stringify(PYTHON)},[${JSON.stringify(STANDIN)},'--port','0','--parent-pid',String(process.pid)],{stdio:['ignore','pipe','inherit'],detached:true});` +
            `p.stdout.on('data',d=>{if(/STANDIN READY/.test(d)){console.log('PID '+p.pid);process.exit(0);}});`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      child.stdout.on('data', (d) => { out += d; });
      await new Promise((r) => child.once('exit', r));
      const pid = Number(/PID (\d+)/.exec(out)?.[1]);
      assert.ok(pid > 0, `got stand-in pid from: ${out}`);
      const deadline = Date.now() + 5000;
      let alive = true;
      while (Date.now() < deadline) {
        try { process.kill(pid, 0); } catch { alive = false; break; }
        await sleep(200);
      }
      if (alive) process.kill(pid, 'SIGKILL');
      assert.equal(alive, false, 'orphaned stand-in exited');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  console.log(`\n${passes} passed, ${failures} failed`);
  process.exit(failures ? 1 : 0);
}

main().catch((err) => {
  console.log('FAIL (unexpected)', err);
  process.exit(1);
});
