/**
 * The MongoDB adapter for oidc-provider artifacts, against the real test database.
 */
import mongoose from 'mongoose';
import Provider from 'oidc-provider';
import { SecretBox } from '../src/crypto/secret-box.js';
import type { Database } from '../src/db/connection.js';
import { localUri } from '../src/db/embedded.js';
import { startStandin } from '../src/db/standin.js';
import { ARTIFACT_MODELS, CLIENTS_COLLECTION, collectionFor, createAdapterFactory, DatabaseUnavailableError, ensureAdapterIndexes, guardDatabase } from '../src/oidc/adapter.js';
import { AccountService } from '../src/accounts/accounts.js';
import { createFindAccount } from '../src/oidc/claims.js';
import { cheapHasher } from './factors/helpers.js';
import { removeArtifacts } from '../src/oidc/revocation.js';
import { openTestDatabase, testDatabaseUri } from './support/gatehouse.js';

let db: Database;
let dbUri: string;
let adapterFor: ReturnType<typeof createAdapterFactory>;
const box = new SecretBox(Buffer.alloc(32, 3));

beforeAll(async () => {
  dbUri = testDatabaseUri('adapter');
  db = await openTestDatabase(dbUri);
  await ensureAdapterIndexes(db.connection);
  adapterFor = createAdapterFactory(db.connection, box);
});

afterAll(async () => {
  await db.connection.dropDatabase();
  await db.close();
});

describe.each(ARTIFACT_MODELS.map((m) => [m]))('%s', (model) => {
  test('upsert, find, consume and destroy', async () => {
    const adapter = adapterFor(model);
    const payload = { jti: `${model}-1`, kind: model, grantId: 'g1', resources: { 'https://api.example.com/v1': 'read' } };
    await adapter.upsert(`${model}-1`, payload as never, 60);
    expect(await adapter.find(`${model}-1`)).toEqual(payload);

    await adapter.consume(`${model}-1`);
    const consumed = await adapter.find(`${model}-1`);
    expect(typeof consumed?.consumed).toBe('number');

    await adapter.destroy(`${model}-1`);
    expect(await adapter.find(`${model}-1`)).toBeUndefined();
  });

  test('an expired record is never returned, even before the TTL sweeper removes it', async () => {
    const adapter = adapterFor(model);
    await adapter.upsert(`${model}-exp`, { jti: `${model}-exp`, uid: `${model}-uid-exp`, userCode: `${model}-UC-EXP` } as never, 60);
    await db.connection.collection(collectionFor(model)).updateOne({ _id: `${model}-exp` as never }, { $set: { expiresAt: new Date(Date.now() - 1) } });
    expect(await adapter.find(`${model}-exp`)).toBeUndefined();
    expect(await adapter.findByUid(`${model}-uid-exp`)).toBeUndefined();
    expect(await adapter.findByUserCode(`${model}-UC-EXP`)).toBeUndefined();
  });
});

test('lookups by uid and userCode', async () => {
  await adapterFor('Session').upsert('s1', { jti: 's1', uid: 'uid-1', accountId: 'a' } as never, 60);
  expect(await adapterFor('Session').findByUid('uid-1')).toMatchObject({ jti: 's1', accountId: 'a' });
  await adapterFor('DeviceCode').upsert('d1', { jti: 'd1', userCode: 'ABCD-EFGH' } as never, 60);
  expect(await adapterFor('DeviceCode').findByUserCode('ABCD-EFGH')).toMatchObject({ jti: 'd1' });
  expect(await adapterFor('DeviceCode').findByUserCode('NOPE')).toBeUndefined();
});

test('revokeByGrantId removes exactly that grant’s records', async () => {
  const tokens = adapterFor('AccessToken');
  await tokens.upsert('t1', { jti: 't1', grantId: 'grant-a' } as never, 60);
  await tokens.upsert('t2', { jti: 't2', grantId: 'grant-a' } as never, 60);
  await tokens.upsert('t3', { jti: 't3', grantId: 'grant-b' } as never, 60);
  await tokens.revokeByGrantId('grant-a');
  expect(await tokens.find('t1')).toBeUndefined();
  expect(await tokens.find('t2')).toBeUndefined();
  expect(await tokens.find('t3')).toMatchObject({ jti: 't3' });
});

test('a value looked up as every token kind at once (introspection) takes one round trip and finds its own kind', async () => {
  await adapterFor('ClientCredentials').upsert('tok-cc', { jti: 'tok-cc', kind: 'ClientCredentials', clientId: 'svc' } as never, 60);
  await adapterFor('RefreshToken').upsert('tok-rt', { jti: 'tok-rt', kind: 'RefreshToken', grantId: 'g-rt', sessionUid: 'su-rt' } as never, 60);
  const commands: string[] = [];
  const client = db.connection.getClient();
  const count = (event: { commandName: string }) => commands.push(event.commandName);
  client.on('commandStarted', count);
  const lookUp = (value: string) => Promise.all(['AccessToken', 'ClientCredentials', 'RefreshToken'].map((m) => adapterFor(m).find(value)));
  try {
    expect(await lookUp('tok-cc')).toEqual([undefined, expect.objectContaining({ jti: 'tok-cc' }), undefined]);
    expect(await lookUp('tok-rt')).toEqual([undefined, undefined, expect.objectContaining({ jti: 'tok-rt', grantId: 'g-rt' })]);
    expect(await lookUp('nope')).toEqual([undefined, undefined, undefined]);
  } finally {
    client.off('commandStarted', count);
  }
  // Command monitoring is off on the test connection unless enabled; when it is on, each lookup is one command.
  if (commands.length) expect(commands.filter((c) => c === 'aggregate' || c === 'find')).toHaveLength(3);
});

/** An adapter factory on a connection of its own that counts the commands it sends. */
async function countingAdapters(): Promise<{ adapterFor: ReturnType<typeof createAdapterFactory>; commands: string[]; close(): Promise<void> }> {
  const connection = await mongoose.createConnection(dbUri, { monitorCommands: true }).asPromise();
  const commands: string[] = [];
  connection.getClient().on('commandStarted', (event) => commands.push(event.commandName));
  return { adapterFor: createAdapterFactory(connection, box), commands, close: () => connection.close() };
}

describe('group commit: concurrent saves and finds share commands', () => {
  test('50 tokens saved at once take far fewer than 50 commands, and every one is stored', async () => {
    const counting = await countingAdapters();
    try {
      const tokens = counting.adapterFor('ClientCredentials');
      await tokens.upsert('gc-warm', { jti: 'gc-warm' } as never, 60); // the first save goes alone
      counting.commands.length = 0;
      const ids = Array.from({ length: 50 }, (_, i) => `gc-${i}`);
      await Promise.all(ids.map((id) => tokens.upsert(id, { jti: id, clientId: 'svc' } as never, 60)));
      const writes = counting.commands.filter((c) => c === 'update');
      expect(writes.length).toBeGreaterThanOrEqual(1);
      expect(writes.length).toBeLessThanOrEqual(2);
      // Read back through the ordinary adapter: the writes are in the database, not just acknowledged.
      const found = await Promise.all(ids.map((id) => adapterFor('ClientCredentials').find(id)));
      expect(found.map((p) => p?.jti)).toEqual(ids);
    } finally {
      await counting.close();
    }
  });

  test('two saves of the same record in one batch leave the later one, as in order', async () => {
    const tokens = adapterFor('AccessToken');
    await Promise.all([
      tokens.upsert('gc-same', { jti: 'gc-same', scope: 'first' } as never, 60),
      tokens.upsert('gc-same', { jti: 'gc-same', scope: 'second' } as never, 60),
    ]);
    expect(await tokens.find('gc-same')).toMatchObject({ scope: 'second' });
  });

  test('a save that the database refuses fails alone; the others in its batch are stored', async () => {
    // A unique index on sessionUid (test only) makes the second of two records with the same one a duplicate.
    const collection = db.connection.collection(collectionFor('DeviceCode'));
    await collection.createIndex({ sessionUid: 1 }, { name: 'sessionUid_unique_test', unique: true, sparse: true });
    try {
      const codes = adapterFor('DeviceCode');
      const outcomes = await Promise.allSettled([
        codes.upsert('gc-dc-1', { jti: 'gc-dc-1', sessionUid: 'gc-shared-uid' } as never, 60),
        codes.upsert('gc-dc-2', { jti: 'gc-dc-2', sessionUid: 'gc-other-uid' } as never, 60),
        codes.upsert('gc-dc-3', { jti: 'gc-dc-3', sessionUid: 'gc-shared-uid' } as never, 60),
      ]);
      // One of the two with the shared value is refused (which one is the database's choice in an unordered write).
      expect(outcomes[1]!.status).toBe('fulfilled');
      expect([outcomes[0]!.status, outcomes[2]!.status].sort()).toEqual(['fulfilled', 'rejected']);
      const refused = outcomes[0]!.status === 'rejected' ? 0 : 2;
      expect((outcomes[refused] as PromiseRejectedResult).reason).toMatchObject({ code: 11000 });
      expect(await codes.find(`gc-dc-${refused + 1}`)).toBeUndefined();
      expect(await codes.find(`gc-dc-${3 - refused}`)).toMatchObject({ sessionUid: 'gc-shared-uid' });
      expect(await codes.find('gc-dc-2')).toMatchObject({ sessionUid: 'gc-other-uid' });
    } finally {
      await collection.dropIndex('sessionUid_unique_test');
    }
  });

  test('30 finds at once, of different tokens and kinds, each get their own record in a few commands', async () => {
    const counting = await countingAdapters();
    try {
      const kinds = ['AccessToken', 'ClientCredentials', 'RefreshToken'];
      const ids = Array.from({ length: 30 }, (_, i) => `gcf-${i}`);
      await Promise.all(ids.map((id, i) => counting.adapterFor(kinds[i % 3]!).upsert(id, { jti: id, kind: kinds[i % 3] } as never, 60)));
      counting.commands.length = 0;
      // Each id is looked up as its own kind and as one other kind (which must not find it).
      const found = await Promise.all(
        ids.flatMap((id, i) => [counting.adapterFor(kinds[i % 3]!).find(id), counting.adapterFor(kinds[(i + 1) % 3]!).find(id)]),
      );
      ids.forEach((id, i) => {
        expect(found[2 * i]).toMatchObject({ jti: id, kind: kinds[i % 3] });
        expect(found[2 * i + 1]).toBeUndefined();
      });
      expect(counting.commands.length).toBeGreaterThanOrEqual(1);
      expect(counting.commands.length).toBeLessThanOrEqual(2);
    } finally {
      await counting.close();
    }
  });
});

test('a delete is not overtaken by a save of the same record queued before it', async () => {
  const sessions = adapterFor('Session');
  const first = sessions.upsert('ord-w', { jti: 'ord-w' } as never, 60); // goes out alone
  await new Promise((resolve) => setImmediate(resolve)); // ... and is now on its way
  const queued = sessions.upsert('ord-x', { jti: 'ord-x', uid: 'ord-x-uid' } as never, 60); // waits for it
  const signedOut = sessions.destroy('ord-x'); // started after the save: must land after it
  await Promise.all([first, queued, signedOut]);
  expect(await sessions.find('ord-x')).toBeUndefined();
  expect(await sessions.findByUid('ord-x-uid')).toBeUndefined();
});

describe('interactions: a save after the first only updates, so a destroyed interaction stays gone', () => {
  /** oidc-provider's own Interaction model over the adapter under test. */
  const providerOn = (adapters: ReturnType<typeof createAdapterFactory>) => new Provider('http://localhost:3000', { adapter: adapters });
  /** How oidc-provider itself starts an interaction (lib/actions/authorization/interactions.js); its types leave the constructor out. */
  type NewInteraction = new (uid: string, payload: Record<string, unknown>) => InstanceType<Provider['Interaction']>;
  const interactionOf = (provider: Provider, uid: string, payload: Record<string, unknown>) => new (provider.Interaction as unknown as NewInteraction)(uid, payload);
  const started = (provider: Provider, uid: string) =>
    interactionOf(provider, uid, { params: { client_id: 'rp', scope: 'openid' }, prompt: { name: 'login', reasons: ['no_session'], details: {} }, returnTo: `/auth/${uid}/resume` });
  const stored = (uid: string) => db.connection.collection(collectionFor('Interaction')).findOne({ _id: uid as never });

  test('read, destroyed by its resume, then saved by the request that read it: the document does not come back', async () => {
    const provider = providerOn(adapterFor);
    const first = started(provider, 'ia-race-1');
    await first.save(60); // the first save creates it
    expect(await stored('ia-race-1')).not.toBeNull();

    const read = (await provider.Interaction.find('ia-race-1'))!; // a request reads it (a second form post) ...
    await (await provider.Interaction.find('ia-race-1'))!.destroy(); // ... the resume consumes it ...
    read.result = { login: { accountId: 'someone' } };
    await read.persist(); // ... and the first request stores its result
    expect(await stored('ia-race-1')).toBeNull();
    expect(await provider.Interaction.find('ia-race-1')).toBeUndefined();

    // The instance that made the first save, saved again, does not bring it back either.
    await first.save(60);
    expect(await stored('ia-race-1')).toBeNull();
  });

  test('first saves create, and later saves of a live interaction update it', async () => {
    const provider = providerOn(adapterFor);
    await started(provider, 'ia-live').save(60);
    const read = (await provider.Interaction.find('ia-live'))!;
    read.result = { login: { accountId: 'someone' } };
    await read.persist();
    expect(await provider.Interaction.find('ia-live')).toMatchObject({ jti: 'ia-live', result: { login: { accountId: 'someone' } }, params: { client_id: 'rp' } });
    // A new interaction carrying objects of an earlier one (oidc-provider passes on `lastSubmission`) is still a first save.
    const next = interactionOf(provider, 'ia-next', { params: { client_id: 'rp' }, prompt: { name: 'consent', reasons: [], details: {} }, lastSubmission: read.result });
    await next.save(60);
    expect(await provider.Interaction.find('ia-next')).toMatchObject({ lastSubmission: { login: { accountId: 'someone' } } });
  });

  test('in one batched command (group commit) each save keeps its own mode and outcome', async () => {
    const counting = await countingAdapters();
    const collection = db.connection.collection(collectionFor('Interaction'));
    // A unique index on sessionUid (test only) lets the database refuse one save of the batch.
    await collection.createIndex({ sessionUid: 1 }, { name: 'sessionUid_unique_test', unique: true, sparse: true });
    try {
      const interactions = counting.adapterFor('Interaction');
      const params = () => ({ client_id: 'rp' });
      await interactions.upsert('ia-b-taken', { jti: 'ia-b-taken', params: params(), sessionUid: 'ia-b-shared' } as never, 60);
      await interactions.upsert('ia-b-gone', { jti: 'ia-b-gone', params: params() } as never, 60);
      await interactions.upsert('ia-b-live', { jti: 'ia-b-live', params: params() } as never, 60);
      const gone = (await interactions.find('ia-b-gone'))!;
      const live = (await interactions.find('ia-b-live'))!;
      await interactions.destroy('ia-b-gone');

      counting.commands.length = 0;
      const outcomes = await Promise.allSettled([
        interactions.upsert('ia-b-new', { jti: 'ia-b-new', params: params() } as never, 60),
        interactions.upsert('ia-b-gone', { ...gone, result: { login: { accountId: 'a' } } } as never, 60),
        interactions.upsert('ia-b-refused', { jti: 'ia-b-refused', params: params(), sessionUid: 'ia-b-shared' } as never, 60),
        interactions.upsert('ia-b-live', { ...live, result: { login: { accountId: 'b' } } } as never, 60),
      ]);
      expect(counting.commands.filter((c) => c === 'update')).toHaveLength(1);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      expect((outcomes[2] as PromiseRejectedResult).reason).toMatchObject({ code: 11000 });
      expect(await interactions.find('ia-b-new')).toMatchObject({ jti: 'ia-b-new' });
      expect(await stored('ia-b-gone')).toBeNull();
      expect(await stored('ia-b-refused')).toBeNull();
      expect(await interactions.find('ia-b-live')).toMatchObject({ result: { login: { accountId: 'b' } } });
    } finally {
      await collection.dropIndex('sessionUid_unique_test');
      await counting.close();
    }
  });
});

test('during an outage, saves and finds sent together fail as DatabaseUnavailableError (503), not as a server error', async () => {
  const standin = await startStandin({ port: 0 });
  const connection = await mongoose.createConnection(localUri(standin.port, 'adapter_outage'), { serverSelectionTimeoutMS: 500 }).asPromise();
  try {
    const adapters = createAdapterFactory(connection, box);
    await adapters('AccessToken').upsert('before-outage', { jti: 'before-outage' } as never, 60);
    await standin.stop();
    const saves = await Promise.allSettled(['o1', 'o2', 'o3'].map((id) => adapters('AccessToken').upsert(id, { jti: id } as never, 60)));
    const finds = await Promise.allSettled(['o1', 'o2'].map((id) => adapters('AccessToken').find(id)));
    for (const outcome of [...saves, ...finds]) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(DatabaseUnavailableError);
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({ status: 503, error: 'temporarily_unavailable' });
    }
  } finally {
    await connection.close().catch(() => undefined);
    await standin.stop();
  }
});

test('the account lookup oidc-provider makes (findAccount) fails as DatabaseUnavailableError during an outage; other errors pass unchanged', async () => {
  const standin = await startStandin({ port: 0 });
  const connection = await mongoose.createConnection(localUri(standin.port, 'find_account_outage'), { serverSelectionTimeoutMS: 500 }).asPromise();
  try {
    const accounts = new AccountService(connection, cheapHasher(), { marketCodes: () => [] });
    const findAccount = createFindAccount(accounts);
    expect(await findAccount({} as never, 'no-such-account')).toBeUndefined();
    await standin.stop();
    // oidc-provider answers any other error from findAccount with a 500 server_error.
    await expect(findAccount({} as never, 'no-such-account')).rejects.toMatchObject({ name: 'DatabaseUnavailableError', status: 503, error: 'temporarily_unavailable' });
  } finally {
    await connection.close().catch(() => undefined);
    await standin.stop();
  }
  const bug = new TypeError('not a database problem');
  await expect(guardDatabase(() => Promise.reject(bug))).rejects.toBe(bug);
  // The driver sometimes passes a socket error on unwrapped (EPIPE when the server has just gone): still a 503.
  const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE', syscall: 'write' });
  await expect(guardDatabase(() => Promise.reject(epipe))).rejects.toMatchObject({ name: 'DatabaseUnavailableError', status: 503 });
});

test('revocation by account or client finds records by their indexed field and records written before it', async () => {
  await adapterFor('Grant').upsert('rev-new', { jti: 'rev-new', accountId: 'acc-rev', clientId: 'cl-rev' } as never, 60);
  // As written before accountId/clientId were copied out of the payload.
  await db.connection.collection(collectionFor('Grant')).insertOne({ _id: 'rev-old' as never, data: JSON.stringify({ jti: 'rev-old', accountId: 'acc-rev', clientId: 'cl-rev' }) });
  await adapterFor('Grant').upsert('rev-other', { jti: 'rev-other', accountId: 'acc-rev-2', clientId: 'cl-rev' } as never, 60);
  expect(await removeArtifacts(db.connection, ['Grant'], 'accountId', 'acc-rev')).toEqual({ Grant: 2 });
  expect(await adapterFor('Grant').find('rev-other')).toMatchObject({ accountId: 'acc-rev-2' });
  expect(await removeArtifacts(db.connection, ['Grant'], 'clientId', 'cl-rev')).toEqual({ Grant: 1 });
});

test('records are stored with a TTL index on expiresAt', async () => {
  const indexes = await db.connection.collection(collectionFor('AccessToken')).indexes();
  expect(indexes.find((i) => i.name === 'expiresAt_ttl')).toMatchObject({ expireAfterSeconds: 0 });
  expect(indexes.map((i) => i.name)).toEqual(expect.arrayContaining(['grantId', 'uid', 'userCode', 'accountId', 'clientId']));
});

test('client secrets are sealed at rest and open again on find', async () => {
  const clients = adapterFor('Client');
  const secret = 'a-client-secret-that-must-never-be-stored-in-clear';
  await clients.upsert('c1', { client_id: 'c1', client_secret: secret, redirect_uris: ['https://rp.example/cb'] } as never, 0);
  const raw = await db.connection.collection(CLIENTS_COLLECTION).findOne({ _id: 'c1' as never });
  expect(JSON.stringify(raw)).not.toContain(secret);
  expect(raw?.secretSealed).toMatch(/^v1\./);
  expect(await clients.find('c1')).toMatchObject({ client_id: 'c1', client_secret: secret, redirect_uris: ['https://rp.example/cb'] });

  // A secret sealed for one client cannot be moved onto another.
  await db.connection.collection(CLIENTS_COLLECTION).insertOne({ _id: 'c2' as never, metadata: {}, secretSealed: raw!.secretSealed, createdAt: new Date(), updatedAt: new Date() });
  await expect(clients.find('c2')).rejects.toThrow();
});
