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
 */
import type { Collection, Connection } from 'mongoose';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { SecretBox } from '../crypto/secret-box.js';
import { isDatabaseUnavailable } from '../db/connection.js';

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

async function guard<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    throw isDatabaseUnavailable(err) ? new DatabaseUnavailableError(err) : err;
  }
}

class ArtifactAdapter implements Adapter {
  constructor(private readonly collection: Collection<ArtifactDocument>) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const doc: Omit<ArtifactDocument, '_id'> = { data: JSON.stringify(payload) };
    if (expiresIn) doc.expiresAt = new Date(Date.now() + expiresIn * 1000);
    if (payload.grantId) doc.grantId = payload.grantId;
    if (payload.uid) doc.uid = payload.uid;
    if (payload.userCode) doc.userCode = payload.userCode;
    await guard(() => this.collection.replaceOne({ _id: id }, doc, { upsert: true }));
  }

  private async findOne(filter: Partial<ArtifactDocument>): Promise<AdapterPayload | undefined> {
    const doc = await guard(() => this.collection.findOne(filter));
    if (!doc || (doc.expiresAt && doc.expiresAt.getTime() <= Date.now())) return undefined;
    const payload = JSON.parse(doc.data) as AdapterPayload;
    return doc.consumed ? { ...payload, consumed: doc.consumed } : payload;
  }

  find(id: string) {
    return this.findOne({ _id: id });
  }

  findByUid(uid: string) {
    return this.findOne({ uid });
  }

  findByUserCode(userCode: string) {
    return this.findOne({ userCode });
  }

  async consume(id: string): Promise<void> {
    await guard(() => this.collection.updateOne({ _id: id }, { $set: { consumed: Math.floor(Date.now() / 1000) } }));
  }

  async destroy(id: string): Promise<void> {
    await guard(() => this.collection.deleteOne({ _id: id }));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await guard(() => this.collection.deleteMany({ grantId }));
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
      await guard(() =>
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
    const doc = await guard(() => this.collection.findOne({ _id: id }));
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
      await guard(() => this.collection.deleteOne({ _id: id }));
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

export function createAdapterFactory(connection: Connection, secretBox: SecretBox): (name: string) => Adapter {
  const adapters = new Map<string, Adapter>();
  return (name: string) => {
    let adapter = adapters.get(name);
    if (!adapter) {
      adapter =
        name === 'Client'
          ? new ClientAdapter(connection.collection<ClientDocument>(CLIENTS_COLLECTION), secretBox)
          : new ArtifactAdapter(connection.collection<ArtifactDocument>(collectionFor(name)));
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
      ]);
    }),
  );
}
