/**
 * oidc-provider's storage adapter on MongoDB. One collection per artifact kind; the payload is kept
 * as JSON text (its keys can be URLs, which MongoDB field names should not carry) beside the fields
 * we look things up by. Expiry is a TTL index on `expiresAt`, and `find` also checks it, because the
 * TTL sweeper runs only once a minute.
 *
 * Client records are different: they are the client registry, kept as plain documents so they can be
 * listed and searched, with `client_secret` sealed (encrypted, not hashed: oidc-provider needs the
 * clear secret for client_secret_basic/post and HS256).
 *
 * Clients are read on nearly every request, so the client adapter keeps what it found in memory for
 * CLIENT_CACHE_TTL_MS (a small LRU; misses are not cached). Writes through this adapter (registration,
 * the client registry) drop the entry at once in this process; a change made by another process (another
 * node, the CLI) is seen here within the TTL. The secret stays sealed in the database; only the opened
 * payload is held, in this process's memory.
 *
 * Token saves and finds by id go to the database through group commit (src/db/group-commit.ts): those
 * started while one command of their kind is on its way share the next one (see ArtifactStore).
 *
 * An interaction's saves after its first only update (UPDATE_ONLY_AFTER_FIRST_SAVE): a save racing its
 * resume cannot bring back the interaction the resume destroyed.
 */
import type { Connection, mongo } from 'mongoose';
import Provider, { type Adapter, type AdapterPayload } from 'oidc-provider';
import type { SecretBox } from '../crypto/secret-box.js';
import { isDatabaseUnavailable } from '../db/connection.js';
import { failedBulkIndexes, GroupCommit, type BatchOutcome } from '../db/group-commit.js';

type Collection<T extends mongo.Document> = mongo.Collection<T>;

export const ARTIFACT_MODELS = [
  'Session', 'Interaction', 'AuthorizationCode', 'AccessToken', 'RefreshToken', 'Grant', 'ClientCredentials',
  'ReplayDetection', 'PushedAuthorizationRequest', 'RegistrationAccessToken', 'InitialAccessToken', 'DeviceCode',
  'BackchannelAuthenticationRequest',
] as const;

export const CLIENTS_COLLECTION = 'clients';

interface ArtifactDocument {
  _id: string;
  data: string;
  expiresAt?: Date;
  grantId?: string;
  uid?: string;
  userCode?: string;
  /** Copied from the payload: the session a token expires with, and whose artifact it is (revocation). */
  sessionUid?: string;
  accountId?: string;
  clientId?: string;
  consumed?: number;
}

export interface ClientDocument {
  _id: string;
  metadata: Record<string, unknown>;
  secretSealed?: string;
  createdAt: Date;
  updatedAt: Date;
}

export function collectionFor(model: string): string {
  return `oidc_${model.replace(/[A-Z]/g, (c, i: number) => (i === 0 ? '' : '_') + c.toLowerCase())}`;
}

export function clientSecretContext(clientId: string): string {
  return `client_secret:${clientId}`;
}

/** A database outage becomes an OAuth `temporarily_unavailable` (503), not a `server_error` (500). */
export class DatabaseUnavailableError extends Error {
  readonly status = 503;
  readonly statusCode = 503;
  readonly expose = true;
  readonly error = 'temporarily_unavailable';
  readonly error_description = 'the service is temporarily unavailable, try again shortly';
  constructor(cause: unknown) {
    super('temporarily_unavailable', { cause });
    this.name = 'DatabaseUnavailableError';
  }
}

/** A database error as the adapter's callers should see it: an outage becomes a DatabaseUnavailableError. */
function asAdapterError(err: unknown): unknown {
  return isDatabaseUnavailable(err) ? new DatabaseUnavailableError(err) : err;
}

/**
 * Runs a database operation for oidc-provider: an outage becomes a 503 `temporarily_unavailable`.
 * Everything oidc-provider awaits that reads or writes the database goes through this (the adapter, and
 * our hooks such as findAccount), because oidc-provider turns any other error into a 500 `server_error`.
 */
export async function guardDatabase<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    throw asAdapterError(err);
  }
}

/** Token kinds oidc-provider looks one value up in at once (introspection, revocation: lib/helpers/token_find.js). */
const TOKEN_MODELS = new Set<string>(['AccessToken', 'ClientCredentials', 'RefreshToken']);
/** Artifacts whose finding is followed, in the same request, by reading their session (by uid) and grant. */
const BOUND_MODELS = new Set<string>(['AccessToken', 'RefreshToken', 'AuthorizationCode']);

type Found = ArtifactDocument & { _model?: string; _session?: ArtifactDocument[]; _grant?: ArtifactDocument[]; _account?: AccountRecord[] };

/** An account document as the database holds it (read along with a token: see readAheadAccount). */
export type AccountRecord = Record<string, unknown> & { accountId?: unknown };

/** Where accounts live and the field a token's `accountId` matches (src/accounts/account.model.ts). */
const ACCOUNTS_COLLECTION = 'accounts';

/** Request (oidc-provider's ctx) → documents read ahead for it, by "Model|field|value". Never outlives the request. */
const readAheadByRequest = new WeakMap<object, Map<string, ArtifactDocument | AccountRecord>>();

/** The current oidc-provider request, if any (outside a request nothing is read ahead). */
function currentRequest(): object | undefined {
  return (Provider as unknown as { ctx?: object }).ctx;
}

/**
 * The account a token found in this request belongs to, read in the same round trip as the token (handed
 * out once; undefined when none was read). For findAccount, which oidc-provider calls right after.
 */
export function readAheadAccount(ctx: object, accountId: string): AccountRecord | undefined {
  const docs = readAheadByRequest.get(ctx);
  const key = `Account|accountId|${accountId}`;
  const doc = docs?.get(key) as AccountRecord | undefined;
  if (doc) docs!.delete(key);
  return doc;
}

/** A batch the database does not answer in time, or too many waiting, is an outage to the caller: a 503. */
const BATCH_ERRORS = {
  timeoutError: () => new DatabaseUnavailableError(new Error('the database did not answer within 10 s')),
  overflowError: () => new DatabaseUnavailableError(new Error('too many database operations are waiting')),
};

interface PendingFind {
  adapter: ArtifactAdapter;
  id: string;
  /** The oidc-provider request the find was made in: what is read ahead is kept for it alone. */
  request: object | undefined;
}

/** A batched operation's failure, as the adapter's callers should see it. */
function outcomeOf(err: unknown): BatchOutcome<never> {
  return { ok: false, error: asAdapterError(err) };
}

/**
 * What the artifact adapters share: fewer round trips for the reads oidc-provider makes.
 *
 * - **Finds by id go to the database together** (group commit, src/db/group-commit.ts): the finds started
 *   while one lookup is on its way are sent as one command when it returns, whatever their kind and
 *   request. Without a `token_type_hint`, introspection and revocation look the value up as an access token,
 *   a client_credentials token and a refresh token at once; those, and the lookups of other requests, are
 *   answered by one `aggregate` with `$unionWith` (MongoDB 4.4+), each branch an `_id` match on its own
 *   collection. Nothing is cached: every find is answered by the database, after it was started.
 * - **The session and grant read with the token, within one request.** After finding an access token,
 *   refresh token or authorization code, oidc-provider reads its session (by uid: a token that expires with
 *   its session must still have it) and its grant (which revocation deletes), one after the other. Inside an
 *   HTTP request, that find brings both along (`$lookup` on the indexed `uid` and `_id`) and keeps them for
 *   the rest of **that request only**, each for **one** read; any write to a session or grant in the request
 *   drops them. So they are read at most a few milliseconds earlier than before, in the same request; nothing
 *   is cached across requests, and every request still reads the token, its session and its grant from the
 *   database (revocation and logout take effect exactly as before).
 */
class ArtifactStore {
  private readonly finds = new GroupCommit<PendingFind, Found | undefined>((batch) => this.lookup(batch), BATCH_ERRORS);

  private request(): object | undefined {
    return currentRequest();
  }

  private remember(request: object, model: string, field: string, doc: ArtifactDocument | AccountRecord): void {
    let docs = readAheadByRequest.get(request);
    if (!docs) readAheadByRequest.set(request, (docs = new Map()));
    docs.set(`${model}|${field}|${String((doc as Record<string, unknown>)[field])}`, doc);
  }

  /** A document read ahead for this request, handed out once. */
  take(model: string, field: string, value: string): ArtifactDocument | undefined {
    const request = this.request();
    const docs = request && readAheadByRequest.get(request);
    if (!docs) return undefined;
    const key = `${model}|${field}|${value}`;
    const doc = docs.get(key) as ArtifactDocument | undefined;
    if (doc) docs.delete(key);
    return doc;
  }

  /** A write to `model` in this request: what was read ahead of that kind is no longer used. */
  forget(model: string): void {
    const request = this.request();
    const docs = request && readAheadByRequest.get(request);
    if (!docs) return;
    for (const key of docs.keys()) if (key.startsWith(`${model}|`)) docs.delete(key);
  }

  /** Finds a record by `_id`, in one command with the other finds waiting at the time. */
  find(adapter: ArtifactAdapter, id: string): Promise<Found | undefined> {
    return this.finds.submit({ adapter, id, request: this.request() });
  }

  /** The stages that find `ids` in one adapter's collection, tagged with its model. */
  private branch(adapter: ArtifactAdapter, ids: string[], readAhead: boolean): Record<string, unknown>[] {
    const stages: Record<string, unknown>[] = [{ $match: { _id: ids.length === 1 ? ids[0] : { $in: ids } } }, { $addFields: { _model: adapter.model } }];
    if (readAhead && BOUND_MODELS.has(adapter.model)) {
      // A record without the field is looked up under "-" (matches nothing, through the index) rather than
      // under null, which a sparse index cannot answer.
      stages.push(
        { $addFields: { _sessionKey: { $ifNull: ['$sessionUid', '-'] }, _grantKey: { $ifNull: ['$grantId', '-'] }, _accountKey: { $ifNull: ['$accountId', '-'] } } },
        { $lookup: { from: collectionFor('Session'), localField: '_sessionKey', foreignField: 'uid', as: '_session' } },
        { $lookup: { from: collectionFor('Grant'), localField: '_grantKey', foreignField: '_id', as: '_grant' } },
        // The account the token was issued for (unique accountId index), for the findAccount that follows.
        { $lookup: { from: ACCOUNTS_COLLECTION, localField: '_accountKey', foreignField: 'accountId', as: '_account' } },
      );
    }
    return stages;
  }

  /** One command for a batch of finds: a findOne, a find by `$in`, or an aggregate across collections. */
  private async query(batch: PendingFind[]): Promise<Found[]> {
    const idsByAdapter = new Map<ArtifactAdapter, Set<string>>();
    for (const f of batch) {
      const ids = idsByAdapter.get(f.adapter) ?? new Set<string>();
      idsByAdapter.set(f.adapter, ids.add(f.id));
    }
    const readAhead = batch.some((f) => f.request !== undefined && BOUND_MODELS.has(f.adapter.model));
    const adapters = [...idsByAdapter.keys()];
    if (adapters.length === 1 && !readAhead) {
      const adapter = adapters[0]!;
      const ids = [...idsByAdapter.get(adapter)!];
      const docs = ids.length === 1 ? [await adapter.collection.findOne({ _id: ids[0]! })].filter((d) => d !== null) : await adapter.collection.find({ _id: { $in: ids } }).toArray();
      return docs.map((doc) => ({ ...doc, _model: adapter.model }));
    }
    const [first, ...others] = adapters;
    const pipeline = [
      ...this.branch(first!, [...idsByAdapter.get(first!)!], readAhead),
      ...others.map((a) => ({ $unionWith: { coll: a.collection.collectionName, pipeline: this.branch(a, [...idsByAdapter.get(a)!], readAhead) } })),
    ];
    return (await first!.collection.aggregate<Found>(pipeline).toArray()) as Found[];
  }

  private async lookup(batch: PendingFind[]): Promise<BatchOutcome<Found | undefined>[]> {
    let docs: Found[];
    try {
      docs = await this.query(batch);
    } catch (err) {
      return batch.map(() => outcomeOf(err));
    }
    return batch.map((f) => {
      const doc = docs.find((d) => d._id === f.id && d._model === f.adapter.model);
      if (doc && f.request) {
        // Only documents that are exactly the token's session and grant are kept for later reads.
        const session = doc._session?.length === 1 ? doc._session[0] : undefined;
        if (session?.uid !== undefined && session.uid === doc.sessionUid) this.remember(f.request, 'Session', 'uid', session);
        const grant = doc._grant?.length === 1 ? doc._grant[0] : undefined;
        if (grant && doc.grantId !== undefined && grant._id === doc.grantId) this.remember(f.request, 'Grant', '_id', grant);
        const account = doc._account?.length === 1 ? doc._account[0] : undefined;
        if (account && doc.accountId !== undefined && account.accountId === doc.accountId) this.remember(f.request, 'Account', 'accountId', account);
      }
      return { ok: true, value: doc };
    });
  }
}

interface PendingWrite {
  id: string;
  doc: Omit<ArtifactDocument, '_id'>;
  /** False for a later save of a record that must stay gone once deleted: it only updates. */
  upsert: boolean;
}

/**
 * Kinds whose saves after the first only update. oidc-provider saves an interaction when it starts it
 * and again after reading it (the sign-in's result). As an upsert, such a later save from a request that
 * read the interaction just before its resume destroyed it would recreate the consumed interaction, and
 * the resume could run again until it expired.
 */
const UPDATE_ONLY_AFTER_FIRST_SAVE = new Set<string>(['Interaction']);

/**
 * Tells a later save from the first one. oidc-provider builds a later save's payload from the instance it
 * read (or saved before) and copies that payload's objects (`params`, `prompt`, …) by reference, while
 * a first save's objects are new (a new interaction gets `params` built afresh, and a new id). So a save
 * whose payload holds an object that was read from, or written to, the stored copy of the same record is
 * a later save. Kept weakly: an entry lives only as long as oidc-provider's instance holds the object.
 * Should oidc-provider ever copy those objects, later saves would count as first ones again: an upsert, as
 * before, never a lost first save.
 */
class StoredObjects {
  private readonly recordOf = new WeakMap<object, string>();

  remember(id: string, payload: AdapterPayload): void {
    for (const value of Object.values(payload)) if (typeof value === 'object' && value !== null) this.recordOf.set(value, id);
  }

  isLaterSave(id: string, payload: AdapterPayload): boolean {
    return Object.values(payload).some((value) => typeof value === 'object' && value !== null && this.recordOf.get(value) === id);
  }
}

class ArtifactAdapter implements Adapter {
  /** Saves of this kind go to the database together (group commit): under load, one command for many tokens. */
  private readonly writes = new GroupCommit<PendingWrite, void>((batch) => this.write(batch), BATCH_ERRORS);
  /** For the kinds in UPDATE_ONLY_AFTER_FIRST_SAVE: what tells their later saves apart. */
  private readonly stored: StoredObjects | undefined;

  constructor(
    readonly model: string,
    readonly collection: Collection<ArtifactDocument>,
    private readonly store: ArtifactStore,
  ) {
    this.stored = UPDATE_ONLY_AFTER_FIRST_SAVE.has(model) ? new StoredObjects() : undefined;
  }

  /**
   * One command for a batch of saves. Two saves of the same record in one batch are one write of the later
   * (what running them in order would leave: it creates the record if any of them may). Each save learns its
   * own outcome: an unordered bulk write tries every one, and reports which failed. An update-only save of a
   * record that is gone matches nothing, writes nothing, and succeeds.
   */
  private async write(batch: PendingWrite[]): Promise<BatchOutcome<void>[]> {
    const latest = new Map<string, { doc: Omit<ArtifactDocument, '_id'>; upsert: boolean }>();
    for (const { id, doc, upsert } of batch) latest.set(id, { doc, upsert: upsert || (latest.get(id)?.upsert ?? false) });
    try {
      if (latest.size === 1) {
        const [id, { doc, upsert }] = [...latest][0]!;
        await this.collection.replaceOne({ _id: id }, doc, { upsert });
      } else {
        await this.collection.bulkWrite(
          [...latest].map(([id, { doc, upsert }]) => ({ replaceOne: { filter: { _id: id }, replacement: doc, upsert } })),
          { ordered: false },
        );
      }
      return batch.map(() => ({ ok: true, value: undefined }));
    } catch (err) {
      const ids = [...latest.keys()];
      const failed = failedBulkIndexes(err);
      if (!failed || [...failed].some((index) => ids[index] === undefined)) return batch.map(() => outcomeOf(err));
      const failedIds = new Set([...failed].map((index) => ids[index]));
      return batch.map(({ id }) => (failedIds.has(id) ? outcomeOf(err) : { ok: true, value: undefined }));
    }
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const doc: Omit<ArtifactDocument, '_id'> = { data: JSON.stringify(payload) };
    if (expiresIn) doc.expiresAt = new Date(Date.now() + expiresIn * 1000);
    if (payload.grantId) doc.grantId = payload.grantId;
    if (payload.uid) doc.uid = payload.uid;
    if (payload.userCode) doc.userCode = payload.userCode;
    if (payload.sessionUid) doc.sessionUid = payload.sessionUid;
    if (payload.accountId) doc.accountId = payload.accountId;
    if (payload.clientId) doc.clientId = payload.clientId;
    this.store.forget(this.model);
    const upsert = !this.stored?.isLaterSave(id, payload);
    await this.writes.submit({ id, doc, upsert });
    this.stored?.remember(id, payload); // only once stored: a failed first save may be tried again
  }

  private payloadOf(doc: ArtifactDocument | null | undefined): AdapterPayload | undefined {
    if (!doc || (doc.expiresAt && doc.expiresAt.getTime() <= Date.now())) return undefined;
    const payload = JSON.parse(doc.data) as AdapterPayload;
    this.stored?.remember(doc._id, payload);
    return doc.consumed ? { ...payload, consumed: doc.consumed } : payload;
  }

  private async findOne(filter: Partial<ArtifactDocument>): Promise<AdapterPayload | undefined> {
    return this.payloadOf(await guardDatabase(() => this.collection.findOne(filter)));
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const ahead = this.store.take(this.model, '_id', id);
    if (ahead) return this.payloadOf(ahead);
    if (TOKEN_MODELS.has(this.model) || BOUND_MODELS.has(this.model)) return this.payloadOf(await this.store.find(this, id));
    return this.findOne({ _id: id });
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const ahead = this.store.take(this.model, 'uid', uid);
    if (ahead) return this.payloadOf(ahead);
    return this.findOne({ uid });
  }

  findByUserCode(userCode: string) {
    return this.findOne({ userCode });
  }

  // Consuming, destroying and revoking wait for the saves of this kind already queued in this process, so a
  // save started earlier (a session saved by another tab) cannot land after the delete (a sign-out).
  async consume(id: string): Promise<void> {
    this.store.forget(this.model);
    await this.writes.settled();
    await guardDatabase(() => this.collection.updateOne({ _id: id }, { $set: { consumed: Math.floor(Date.now() / 1000) } }));
  }

  async destroy(id: string): Promise<void> {
    this.store.forget(this.model);
    await this.writes.settled();
    await guardDatabase(() => this.collection.deleteOne({ _id: id }));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    this.store.forget(this.model);
    await this.writes.settled();
    await guardDatabase(() => this.collection.deleteMany({ grantId }));
  }
}

/** How long a client read from the database is served from memory; also the delay for changes made elsewhere. */
export const CLIENT_CACHE_TTL_MS = 30_000;
const CLIENT_CACHE_MAX_ENTRIES = 1000;

class ClientAdapter implements Adapter {
  /** Client id → opened payload, in least-recently-used order (a Map keeps insertion order). */
  private readonly cache = new Map<string, { payload: AdapterPayload; expiresAt: number }>();
  /** Bumped by every invalidation: a read that began before one must not store what it found. */
  private version = 0;

  constructor(
    private readonly collection: Collection<ClientDocument>,
    private readonly secretBox: SecretBox,
    private readonly ttlMs = CLIENT_CACHE_TTL_MS,
  ) {}

  /** Forgets one client (or every client): the next find reads the database. */
  invalidate(id?: string): void {
    this.version++;
    if (id === undefined) this.cache.clear();
    else this.cache.delete(id);
  }

  async upsert(id: string, payload: AdapterPayload): Promise<void> {
    const { client_secret: secret, ...metadata } = payload as AdapterPayload & { client_secret?: string };
    const now = new Date();
    const set: Partial<ClientDocument> = { metadata, updatedAt: now };
    if (secret) set.secretSealed = this.secretBox.seal(secret, clientSecretContext(id));
    try {
      await guardDatabase(() =>
        this.collection.updateOne(
          { _id: id },
          { $set: set, ...(secret ? {} : { $unset: { secretSealed: '' } }), $setOnInsert: { createdAt: now } },
          { upsert: true },
        ),
      );
    } finally {
      this.invalidate(id);
    }
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const cached = this.cache.get(id);
    if (cached) {
      this.cache.delete(id);
      if (cached.expiresAt > Date.now()) {
        this.cache.set(id, cached); // most recently used
        return structuredClone(cached.payload);
      }
    }
    const version = this.version;
    const doc = await guardDatabase(() => this.collection.findOne({ _id: id }));
    if (!doc) return undefined;
    const secret = doc.secretSealed ? this.secretBox.open(doc.secretSealed, clientSecretContext(id)) : undefined;
    const payload = { ...doc.metadata, client_id: id, ...(secret ? { client_secret: secret } : {}) } as AdapterPayload;
    if (this.ttlMs > 0 && version === this.version) {
      this.cache.set(id, { payload: structuredClone(payload), expiresAt: Date.now() + this.ttlMs });
      if (this.cache.size > CLIENT_CACHE_MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    }
    return payload;
  }

  async destroy(id: string): Promise<void> {
    try {
      await guardDatabase(() => this.collection.deleteOne({ _id: id }));
    } finally {
      this.invalidate(id);
    }
  }

  async findByUid(): Promise<undefined> {
    return undefined;
  }

  async findByUserCode(): Promise<undefined> {
    return undefined;
  }

  async consume(): Promise<void> {}

  async revokeByGrantId(): Promise<void> {}
}

/**
 * The driver's own collection rather than mongoose's wrapper around it: the adapter uses none of mongoose's
 * schemas, casting or command buffering, and the wrapper costs CPU on every token read and write.
 */
function driverCollection<T extends mongo.Document>(connection: Connection, name: string): Collection<T> {
  if (!connection.db) throw new Error('the database connection must be open before oidc-provider uses its adapter');
  return connection.db.collection<T>(name);
}

export function createAdapterFactory(connection: Connection, secretBox: SecretBox): (name: string) => Adapter {
  const adapters = new Map<string, Adapter>();
  const store = new ArtifactStore();
  return (name: string) => {
    let adapter = adapters.get(name);
    if (!adapter) {
      adapter =
        name === 'Client'
          ? new ClientAdapter(driverCollection<ClientDocument>(connection, CLIENTS_COLLECTION), secretBox)
          : new ArtifactAdapter(name, driverCollection<ArtifactDocument>(connection, collectionFor(name)), store);
      adapters.set(name, adapter);
    }
    return adapter;
  };
}

/**
 * Drops a client from the client adapter's in-process cache (no-op for any other adapter). For code that
 * writes the clients collection directly (the client registry's update, secret rotation and delete).
 */
export function invalidateCachedClient(adapter: Adapter, clientId?: string): void {
  if (adapter instanceof ClientAdapter) adapter.invalidate(clientId);
}

/** Creates the TTL and lookup indexes. Idempotent; run at every start. */
export async function ensureAdapterIndexes(connection: Connection): Promise<void> {
  await Promise.all(
    ARTIFACT_MODELS.map(async (model) => {
      const collection = connection.collection(collectionFor(model));
      await collection.createIndexes([
        { key: { expiresAt: 1 }, name: 'expiresAt_ttl', expireAfterSeconds: 0 },
        { key: { grantId: 1 }, name: 'grantId', sparse: true },
        { key: { uid: 1 }, name: 'uid', sparse: true },
        { key: { userCode: 1 }, name: 'userCode', sparse: true },
        // Revocation by account or client (revocation.ts). Not sparse: records written before these fields
        // existed are found under null, and only those are then matched on their JSON.
        { key: { accountId: 1 }, name: 'accountId' },
        { key: { clientId: 1 }, name: 'clientId' },
      ]);
    }),
  );
}
