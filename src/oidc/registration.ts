/**
 * Dynamic Client Registration (RFC 7591) and its management API (RFC 7592) through oidc-provider.
 *
 * Registration needs an initial access token minted by an administrator. oidc-provider's
 * InitialAccessToken has an expiry but no use count, so Gatehouse keeps a record beside each token
 * (`registration_tokens`: a SHA-256 of the token, never the token, plus uses left) and every token
 * it mints carries the `gatehouse` registration policy, which on each registration:
 *   1. applies Gatehouse's client rules (the same as for clients made by the API and CLI), refuses
 *      `first_party` and admin scopes, then
 *   2. takes one use off the record atomically, and refuses if none is left or the record is gone
 *      (revoked).
 * The policy is inherited by the registration access token, so RFC 7592 updates obey the same rules
 * (without using up the initial token).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Connection } from 'mongoose';
import type Provider from 'oidc-provider';
import { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { isAdminScope } from '../admin/permissions.js';
import { NotFoundError } from '../errors.js';
import { clientMetadataProblems, metadataTypeProblems } from './clients.js';
import { randomId } from '../crypto/ids.js';
import { guardDatabase } from './adapter.js';
import { CLIENT_ARTIFACTS, removeArtifacts } from './revocation.js';
import type { Logger } from '../logger.js';

export const REGISTRATION_POLICY = 'gatehouse';
export const REGISTRATION_TOKENS_COLLECTION = 'registration_tokens';
/** Upper bound on an initial access token's lifetime when one is given: one year. */
export const MAX_REGISTRATION_TOKEN_SECONDS = 366 * 86_400;

export interface RegistrationTokenDocument {
  _id: string;
  tokenHash: string;
  description?: string;
  /** null: unlimited. */
  maxUses: number | null;
  remainingUses: number | null;
  uses: number;
  expiresAt?: Date;
  createdAt: Date;
  createdBy?: { kind: string; id?: string };
  lastUsedAt?: Date;
}

export interface RegistrationTokenView {
  id: string;
  description: string | null;
  maxUses: number | null;
  uses: number;
  expiresAt: string | null;
  createdAt: string;
  lastUsedAt: string | null;
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function view(doc: RegistrationTokenDocument): RegistrationTokenView {
  return {
    id: doc._id,
    description: doc.description ?? null,
    maxUses: doc.maxUses,
    uses: doc.uses,
    expiresAt: doc.expiresAt?.toISOString() ?? null,
    createdAt: doc.createdAt.toISOString(),
    lastUsedAt: doc.lastUsedAt?.toISOString() ?? null,
  };
}

export function registrationTokens(connection: Connection) {
  return connection.collection<RegistrationTokenDocument>(REGISTRATION_TOKENS_COLLECTION);
}

export async function ensureRegistrationTokenIndexes(connection: Connection): Promise<void> {
  await registrationTokens(connection).createIndexes([
    { key: { tokenHash: 1 }, name: 'tokenHash_unique', unique: true },
    { key: { expiresAt: 1 }, name: 'expiresAt_ttl', expireAfterSeconds: 0 },
  ]);
}

/** Minting, listing and revoking initial access tokens. */
export class RegistrationTokenStore {
  constructor(
    private readonly provider: Provider,
    private readonly connection: Connection,
  ) {}

  private get collection() {
    return registrationTokens(this.connection);
  }

  /** The token value is returned once; only its hash is kept beside oidc-provider's own record. */
  async mint(options: { expiresInSeconds?: number; maxUses?: number; description?: string; createdBy?: RegistrationTokenDocument['createdBy'] }): Promise<RegistrationTokenView & { token: string }> {
    const iat = new this.provider.InitialAccessToken({
      ...(options.expiresInSeconds ? { expiresIn: options.expiresInSeconds } : {}),
      policies: [REGISTRATION_POLICY],
    } as never);
    const token = await iat.save();
    const now = new Date();
    const doc: RegistrationTokenDocument = {
      _id: randomId(12),
      tokenHash: hashToken(token),
      maxUses: options.maxUses ?? null,
      remainingUses: options.maxUses ?? null,
      uses: 0,
      createdAt: now,
      ...(options.description ? { description: options.description } : {}),
      ...(options.expiresInSeconds ? { expiresAt: new Date(now.getTime() + options.expiresInSeconds * 1000) } : {}),
      ...(options.createdBy ? { createdBy: options.createdBy } : {}),
    };
    await this.collection.insertOne(doc);
    return { ...view(doc), token };
  }

  async list(): Promise<RegistrationTokenView[]> {
    const now = new Date();
    const docs = await this.collection.find({ $or: [{ expiresAt: { $exists: false } }, { expiresAt: { $gt: now } }] }).sort({ createdAt: 1, _id: 1 }).toArray();
    return docs.map(view);
  }

  /** Revoking removes Gatehouse's record; the policy then refuses the token wherever it is presented. */
  async revoke(id: string): Promise<RegistrationTokenView> {
    const doc = await this.collection.findOneAndDelete({ _id: id });
    if (!doc) throw new NotFoundError(`no registration token with id "${id}"`);
    return view(doc);
  }
}

/**
 * Takes one use off the token's record, atomically. Returns the record's id, or undefined when the
 * token is unknown, revoked, expired or used up.
 */
export async function consumeRegistrationToken(connection: Connection, token: string): Promise<{ id: string; exhausted: boolean } | undefined> {
  const collection = registrationTokens(connection);
  const tokenHash = hashToken(token);
  const now = new Date();
  const live = { tokenHash, $or: [{ expiresAt: { $exists: false } }, { expiresAt: { $gt: now } }] };
  const limited = await collection.findOneAndUpdate(
    { ...live, remainingUses: { $gt: 0 } },
    { $inc: { remainingUses: -1, uses: 1 }, $set: { lastUsedAt: now } },
    { returnDocument: 'after' },
  );
  const doc = limited ?? (await collection.findOneAndUpdate({ ...live, remainingUses: null }, { $inc: { uses: 1 }, $set: { lastUsedAt: now } }, { returnDocument: 'after' }));
  // The lookup went by hash; confirm it in constant time before trusting the match.
  if (!doc || !timingSafeEqual(Buffer.from(doc.tokenHash, 'hex'), Buffer.from(tokenHash, 'hex'))) return undefined;
  return { id: doc._id, exhausted: doc.remainingUses === 0 };
}

function refuse(message: string): never {
  throw new errors.InvalidClientMetadata(message);
}

/** Gatehouse's rules for self-registered clients, on the metadata oidc-provider is about to store. */
function checkRegisteredMetadata(ctx: KoaContextWithOIDC, properties: Record<string, unknown>): void {
  const updating = ctx.oidc.route === 'client_update';
  const current = updating ? (ctx.oidc.client as unknown as Record<string, unknown> | undefined) : undefined;

  // first_party skips consent: only an administrator may set it. An update may repeat the value it read.
  const currentFirstParty = current?.first_party === true;
  if (properties.first_party !== undefined && properties.first_party !== currentFirstParty) {
    refuse(currentFirstParty ? 'first_party: can only be changed by an administrator' : 'first_party: can only be set by an administrator');
  }
  if (updating) properties.first_party = currentFirstParty;

  // Admin scopes are granted by an administrator only; an update may keep those it already has.
  const held = new Set(String(current?.scope ?? '').split(' '));
  const requested = typeof properties.scope === 'string' ? properties.scope.split(' ') : [];
  const adminScope = requested.find((scope) => isAdminScope(scope) && !held.has(scope));
  if (adminScope) refuse(`scope: "${adminScope}" can only be granted by an administrator`);

  // Raw input from the registrant: check the shapes first, so the rules below never trip over a wrong type.
  const shape = metadataTypeProblems(properties);
  // An update (RFC 7592 sends the whole registration) is held to the redirect rule only if it changes them.
  // (The client instance holds recognised metadata under camelCase names.)
  const redirectsChanged = !updating || JSON.stringify([properties.grant_types, properties.redirect_uris]) !== JSON.stringify([current?.grantTypes, current?.redirectUris]);
  const problems = Object.keys(shape).length > 0 ? shape : clientMetadataProblems(properties, { redirectsChanged });
  const [field, message] = Object.entries(problems)[0] ?? [];
  if (field) refuse(`${field}: ${message}`);
}

/** The `features.registration` and `features.registrationManagement` configuration. */
export function registrationFeatures(connection: Connection): Pick<NonNullable<Configuration['features']>, 'registration' | 'registrationManagement'> {
  return {
    registration: {
      enabled: true,
      initialAccessToken: true,
      issueRegistrationAccessToken: true,
      // Runs before the policies: an initial access token not minted by Gatehouse (so without its
      // policy, which enforces the client rules and the use count) registers nothing.
      idFactory(ctx) {
        const iat = (ctx as KoaContextWithOIDC).oidc.entities.InitialAccessToken as { policies?: string[] } | undefined;
        if (!iat?.policies?.includes(REGISTRATION_POLICY)) throw new errors.InvalidToken('this initial access token was not issued by a Gatehouse administrator');
        return randomId(16);
      },
      policies: {
        async [REGISTRATION_POLICY](ctx, properties) {
          const oidcCtx = ctx as KoaContextWithOIDC;
          checkRegisteredMetadata(oidcCtx, properties as Record<string, unknown>);
          // Full schema validation before the use is taken, so a rejected request costs no use.
          await oidcCtx.oidc.provider.Client.validate({ ...(properties as Record<string, unknown>) } as never);
          if (oidcCtx.oidc.route !== 'registration') return;
          const used = await guardDatabase(() => consumeRegistrationToken(connection, oidcCtx.oidc.getAccessToken()));
          if (!used) throw new errors.InvalidToken('the initial access token was revoked, has expired or has no uses left');
          oidcCtx.state.registrationTokenId = used.id;
          if (used.exhausted) await oidcCtx.oidc.entities.InitialAccessToken?.destroy();
        },
      },
    },
    registrationManagement: {
      enabled: true,
      rotateRegistrationAccessToken: true,
    },
  };
}

/**
 * A client that deletes itself (RFC 7592) takes its grants, tokens and codes with it, as an
 * administrator's delete does: otherwise a client later created with the same id would inherit them.
 */
export function revokeOnSelfDeletion(provider: Provider, connection: Connection, log: Logger): void {
  provider.on('registration_delete.success', (_ctx: unknown, client: { clientId: string }) => {
    removeArtifacts(connection, CLIENT_ARTIFACTS, 'clientId', client.clientId).catch((err: unknown) => {
      log.error({ err, clientId: client.clientId }, 'could not revoke the artifacts of a self-deleted client');
    });
  });
}
