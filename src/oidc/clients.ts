/**
 * The client registry: create, list, show, update, rotate the secret of, and delete relying parties.
 * Clients are stored through the adapter's Client model (src/oidc/adapter.ts), so oidc-provider reads
 * exactly what we write, and every client is validated by oidc-provider's own schema plus
 * Gatehouse's rules (clientMetadataProblems), whichever way it was registered.
 */
import { ACR } from './scopes.js';
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mongoose';
import type Provider from 'oidc-provider';
import type { Adapter } from 'oidc-provider';
import { z } from 'zod';
import type { SecretBox } from '../crypto/secret-box.js';
import { ConflictError, InputError, NotFoundError } from '../errors.js';
import { CLIENTS_COLLECTION, clientSecretContext, invalidateCachedClient, type ClientDocument } from './adapter.js';
import { grantShapeProblems, redirectUriProblem, unusedRedirectUrisProblem } from './client-rules.js';
import { CLIENT_ARTIFACTS, removeArtifacts } from './revocation.js';
import { randomId } from '../crypto/ids.js';
import { ACCOUNT_CLIENT_ID } from '../selfservice/account-client.js';

/** oidc-provider exposes each model's adapter at run time; its type definitions do not declare it. */
export function clientAdapter(provider: Provider): Adapter {
  return (provider.Client as unknown as { adapter: Adapter }).adapter;
}

export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
export const RESPONSE_TYPES = ['code'] as const;
const SECRET_AUTH_METHODS: ReadonlySet<string> = new Set(['client_secret_basic', 'client_secret_post']);

/** Private-key members of RSA, EC, OKP and symmetric JWKs: a client registers public keys only. */
export const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

const scopeRule = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/, 'must be space-separated scope names').max(2000);
const jwksRule = z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1, 'must hold at least one key').max(20) });
const uriList = z.array(z.string().max(2000)).max(50);

/** The acr values Gatehouse issues: the only ones a client's default_acr_values may name. */
export const ACR_VALUES: readonly string[] = Object.values(ACR);

/** Why a default_acr_values list is refused, or undefined: one rule for the API, the CLI and registration. */
export function acrValuesProblem(values: readonly string[]): string | undefined {
  if (values.length === 0) return 'must name at least one acr value (leave it out, or send null, for none)';
  const unknown = values.find((value) => !ACR_VALUES.includes(value));
  if (unknown !== undefined) return `"${unknown.slice(0, 100)}" is not an acr value Gatehouse issues; allowed: ${ACR_VALUES.join(', ')}`;
  return undefined;
}

/** A client's default_acr_values; one naming urn:gatehouse:acr:mfa makes every sign-in to it need a second factor. */
export const acrValuesRule = z
  .array(z.string().max(200))
  .max(10)
  .superRefine((values, ctx) => {
    const problem = acrValuesProblem(values);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

export const newClientInput = z.object({
  name: z.string().trim().min(1, 'must not be empty').max(200),
  redirectUris: uriList.default([]),
  postLogoutRedirectUris: uriList.default([]),
  grantTypes: z.array(z.enum(GRANT_TYPES)).min(1).default(['authorization_code', 'refresh_token']),
  authMethod: z.enum(AUTH_METHODS).default('client_secret_basic'),
  scope: scopeRule.optional(),
  firstParty: z.boolean().default(false),
  /** Every sign-in to this client needs a second factor (default_acr_values), whatever the market policy says. */
  requireMfa: z.boolean().default(false),
  /** As registered (default_acr_values); requireMfa adds urn:gatehouse:acr:mfa to it. */
  defaultAcrValues: acrValuesRule.optional(),
  jwks: jwksRule.optional(),
  clientId: z.string().regex(/^[A-Za-z0-9._~-]{3,128}$/, 'must be 3-128 URL-safe characters').optional(),
  clientSecret: z.string().min(32, 'must be at least 32 characters').optional(),
});
export type NewClientInput = z.input<typeof newClientInput>;

/**
 * A change to a client, in OIDC metadata names (RFC 7591). Lists replace the stored list; `null`
 * removes `scope` or `jwks`. Unknown fields are refused so a typo is never silently ignored.
 */
export const clientMetadataPatch = z
  .object({
    client_name: z.string().trim().min(1, 'must not be empty').max(200),
    redirect_uris: uriList,
    post_logout_redirect_uris: uriList,
    grant_types: z.array(z.enum(GRANT_TYPES)).min(1, 'must name at least one grant type'),
    response_types: z.array(z.enum(RESPONSE_TYPES)),
    scope: scopeRule.nullable(),
    token_endpoint_auth_method: z.enum(AUTH_METHODS),
    jwks: jwksRule.nullable(),
    first_party: z.boolean(),
    default_acr_values: acrValuesRule.nullable(),
  })
  .partial()
  .strict();
export type ClientMetadataPatch = z.infer<typeof clientMetadataPatch>;

export interface ClientSummary {
  clientId: string;
  name: string;
  grantTypes: string[];
  redirectUris: string[];
  authMethod: string;
  firstParty: boolean;
  createdAt?: Date;
}

export interface CreatedClient extends ClientSummary {
  /** Shown once: Gatehouse stores it sealed and never prints it again. */
  clientSecret?: string;
  metadata: Record<string, unknown>;
}

export interface ClientRecord extends ClientSummary {
  metadata: Record<string, unknown>;
  updatedAt?: Date;
}

export interface UpdatedClient {
  client: ClientRecord;
  /** Changed metadata fields, before and after (public keys as their key ids). */
  changes: Record<string, { before: unknown; after: unknown }>;
  /** A new secret, when the change of auth method needed one: shown once. */
  clientSecret?: string;
  secretRemoved: boolean;
}

function summarize(id: string, metadata: Record<string, unknown>, createdAt?: Date): ClientSummary {
  return {
    clientId: id,
    name: String(metadata.client_name ?? id),
    grantTypes: (metadata.grant_types as string[] | undefined) ?? ['authorization_code'],
    redirectUris: (metadata.redirect_uris as string[] | undefined) ?? [],
    authMethod: String(metadata.token_endpoint_auth_method ?? 'client_secret_basic'),
    firstParty: metadata.first_party === true,
    ...(createdAt ? { createdAt } : {}),
  };
}

function record(doc: ClientDocument): ClientRecord {
  return { ...summarize(doc._id, doc.metadata, doc.createdAt), metadata: { ...doc.metadata, client_id: doc._id }, ...(doc.updatedAt ? { updatedAt: doc.updatedAt } : {}) };
}

function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Gatehouse's rules on top of oidc-provider's schema, keyed by metadata field: redirect URIs (https
 * except loopback, no fragment), grant/response consistency, and authentication that fits the grants.
 */
/** Client metadata that makes the server fetch or call a URL the client chose. */
export const FETCHED_BY_URL = ['sector_identifier_uri', 'request_uris', 'backchannel_logout_uri', 'frontchannel_logout_uri', 'initiate_login_uri', 'backchannel_client_notification_endpoint'] as const;

/** Shape problems in raw (self-registered) metadata, found before any rule reads the values. */
export function metadataTypeProblems(metadata: Record<string, unknown>): Record<string, string> {
  const problems: Record<string, string> = {};
  const isStringList = (value: unknown) => Array.isArray(value) && value.every((item) => typeof item === 'string');
  for (const field of ['grant_types', 'response_types', 'redirect_uris', 'post_logout_redirect_uris', 'default_acr_values']) {
    if (metadata[field] !== undefined && !isStringList(metadata[field])) problems[field] = 'must be an array of strings';
  }
  for (const field of ['token_endpoint_auth_method', 'scope', 'client_name']) {
    if (metadata[field] !== undefined && typeof metadata[field] !== 'string') problems[field] = 'must be a string';
  }
  const jwks = metadata.jwks as { keys?: unknown } | undefined;
  if (jwks !== undefined && (typeof jwks !== 'object' || jwks === null || !Array.isArray(jwks.keys) || !jwks.keys.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k)))) {
    problems.jwks = 'must be an object with a "keys" array of JSON Web Keys';
  }
  return problems;
}

export function clientMetadataProblems(metadata: Record<string, unknown>, options: { redirectsChanged?: boolean } = {}): Record<string, string> {
  const grants = (metadata.grant_types as string[] | undefined) ?? ['authorization_code'];
  const problems = grantShapeProblems({
    grant_types: grants,
    ...(metadata.response_types !== undefined ? { response_types: metadata.response_types as string[] } : {}),
    redirect_uris: (metadata.redirect_uris as string[] | undefined) ?? [],
  });
  const unused = options.redirectsChanged === false ? undefined : unusedRedirectUrisProblem({ grant_types: grants, redirect_uris: (metadata.redirect_uris as string[] | undefined) ?? [] });
  if (unused && !problems.redirect_uris) problems.redirect_uris = unused;
  const unknownGrant = grants.find((g) => !(GRANT_TYPES as readonly string[]).includes(g));
  if (unknownGrant) problems.grant_types = `"${unknownGrant}" is not supported (use ${GRANT_TYPES.join(', ')})`;
  for (const uri of (metadata.post_logout_redirect_uris as string[] | undefined) ?? []) {
    const problem = redirectUriProblem(uri);
    if (problem) {
      problems.post_logout_redirect_uris = problem;
      break;
    }
  }
  const method = String(metadata.token_endpoint_auth_method ?? 'client_secret_basic');
  if (!(AUTH_METHODS as readonly string[]).includes(method)) {
    problems.token_endpoint_auth_method = `must be one of ${AUTH_METHODS.join(', ')}`;
  } else if (method === 'none' && grants.includes('client_credentials')) {
    problems.token_endpoint_auth_method = 'client_credentials needs an authenticated client (not "none")';
  }
  const acrProblem = metadata.default_acr_values === undefined ? undefined : acrValuesProblem(metadata.default_acr_values as string[]);
  if (acrProblem) problems.default_acr_values = acrProblem;
  if (metadata.jwks_uri !== undefined) problems.jwks_uri = 'Gatehouse takes client public keys inline (jwks), not from a URL';
  // Metadata that would make Gatehouse fetch a URL of the client's choosing (server-side request forgery).
  for (const field of FETCHED_BY_URL) {
    if (metadata[field] !== undefined) problems[field] = 'is not supported by Gatehouse';
  }
  const keys = (metadata.jwks as { keys?: Array<Record<string, unknown>> } | undefined)?.keys;
  if (method === 'private_key_jwt' && !keys?.length) problems.jwks = 'private_key_jwt needs the client public keys (jwks)';
  keys?.forEach((key, i) => {
    const secret = PRIVATE_JWK_MEMBERS.filter((member) => member in key);
    if (secret.length) problems.jwks = `keys[${i}] contains private key material (${secret.join(', ')}); give only the public keys`;
  });
  return problems;
}

export function problemsError(problems: Record<string, string>): InputError {
  return new InputError(`invalid client: ${Object.entries(problems).map(([k, v]) => `${k}: ${v}`).join('; ')}`, problems);
}

/**
 * The account area's client (src/selfservice/account-client.ts) is built in: a static oidc-provider
 * client, which oidc-provider serves ahead of any stored client with its id. A stored one would be a
 * dead copy, and deleting it would revoke everyone's account-area tokens, so it is never stored,
 * changed, deleted, shown or listed here.
 */
export function isBuiltInClient(clientId: string | undefined): boolean {
  return clientId === ACCOUNT_CLIENT_ID;
}

export function refuseBuiltInClient(clientId: string | undefined): void {
  if (isBuiltInClient(clientId)) {
    throw new ConflictError(`"${ACCOUNT_CLIENT_ID}" is a built-in client (the account area's own): it cannot be created, changed or deleted`, 'client_id');
  }
}

/** Runs oidc-provider's own client schema; its complaint becomes a 400 naming the field when it can. */
async function providerValidate(provider: Provider, metadata: Record<string, unknown>): Promise<void> {
  try {
    await provider.Client.validate(metadata as never);
  } catch (err) {
    const e = err as { error_description?: string; message: string };
    const message = e.error_description ?? e.message;
    const field = /^([a-z_]+) /.exec(message)?.[1];
    throw new InputError(`invalid client: ${message}`, { [field && field in metadata ? field : 'metadata']: message });
  }
}

/** Public keys are shown in changes by their key ids: enough to follow a key rotation. */
function comparable(field: string, value: unknown): unknown {
  if (field === 'jwks') return value ? ((value as { keys: Array<{ kid?: unknown }> }).keys ?? []).map((k) => k.kid ?? '(no kid)') : null;
  return value ?? null;
}

export class ClientRegistry {
  constructor(
    private readonly provider: Provider,
    private readonly connection: Connection,
    private readonly secretBox: SecretBox,
  ) {}

  private get collection() {
    return this.connection.collection<ClientDocument>(CLIENTS_COLLECTION);
  }

  /**
   * Runs a direct write to the clients collection, then drops the client from the adapter's in-process
   * cache (src/oidc/adapter.ts), so this process serves the change at once (other processes within the TTL).
   */
  private async writing<T>(clientId: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } finally {
      invalidateCachedClient(clientAdapter(this.provider), clientId);
    }
  }

  /** Builds and validates client metadata without storing it. */
  async buildMetadata(input: NewClientInput): Promise<{ clientId: string; clientSecret?: string; metadata: Record<string, unknown> }> {
    const parsed = newClientInput.safeParse(input);
    if (!parsed.success) throw InputError.fromZod(parsed.error, 'invalid client');
    const c = parsed.data;
    const grantTypes = [...new Set(c.grantTypes)];
    const clientId = c.clientId ?? randomId(16);
    const clientSecret = SECRET_AUTH_METHODS.has(c.authMethod) ? (c.clientSecret ?? newSecret()) : undefined;
    const acrValues = [...new Set([...(c.defaultAcrValues ?? []), ...(c.requireMfa ? [ACR.multiFactor] : [])])];

    const metadata: Record<string, unknown> = {
      client_id: clientId,
      client_name: c.name,
      redirect_uris: c.redirectUris,
      post_logout_redirect_uris: c.postLogoutRedirectUris,
      grant_types: grantTypes,
      response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
      token_endpoint_auth_method: c.authMethod,
      first_party: c.firstParty,
      ...(acrValues.length > 0 ? { default_acr_values: acrValues } : {}),
      ...(c.scope ? { scope: c.scope } : {}),
      ...(c.jwks ? { jwks: c.jwks } : {}),
    };
    const problems = clientMetadataProblems(metadata);
    if (Object.keys(problems).length > 0) throw problemsError(problems);
    await providerValidate(this.provider, { ...metadata, ...(clientSecret ? { client_secret: clientSecret } : {}) });
    return { clientId, ...(clientSecret ? { clientSecret } : {}), metadata: { ...metadata, ...(clientSecret ? { client_secret: clientSecret } : {}) } };
  }

  async create(input: NewClientInput): Promise<CreatedClient> {
    refuseBuiltInClient(input.clientId);
    const { clientId, clientSecret, metadata } = await this.buildMetadata(input);
    const existing = await this.collection.findOne({ _id: clientId }, { projection: { _id: 1 } });
    if (existing) throw new ConflictError(`a client with id "${clientId}" already exists`, 'client_id');
    await clientAdapter(this.provider).upsert(clientId, metadata as never, 0);
    const { client_secret: _omit, ...publicMetadata } = metadata;
    return { ...summarize(clientId, metadata, new Date()), ...(clientSecret ? { clientSecret } : {}), metadata: publicMetadata };
  }

  /** Every client, oldest first (the CLI's `client list`). */
  async list(): Promise<ClientSummary[]> {
    const docs = await this.collection.find({ _id: { $ne: ACCOUNT_CLIENT_ID } }, { projection: { secretSealed: 0 } }).sort({ createdAt: 1, _id: 1 }).toArray();
    return docs.map((d) => summarize(d._id, d.metadata, d.createdAt));
  }

  /** One page, oldest first in a stable order (createdAt, then client_id), after the given client. */
  async page(options: { limit: number; after?: { createdAt: Date; clientId: string } }): Promise<{ items: ClientRecord[]; more: boolean }> {
    const { after } = options;
    const position = after ? { $or: [{ createdAt: { $gt: after.createdAt } }, { createdAt: after.createdAt, _id: { $gt: after.clientId } }] } : {};
    // A stored copy of the built-in client (made before it was reserved) is never served, so never listed.
    const filter = { $and: [position, { _id: { $ne: ACCOUNT_CLIENT_ID } }] };
    const docs = await this.collection
      .find(filter, { projection: { secretSealed: 0 } })
      .sort({ createdAt: 1, _id: 1 })
      .limit(options.limit + 1)
      .toArray();
    return { items: docs.slice(0, options.limit).map(record), more: docs.length > options.limit };
  }

  /** The client's registration, without its secret. */
  async show(clientId: string): Promise<ClientRecord> {
    if (isBuiltInClient(clientId)) throw new NotFoundError(`"${clientId}" is a built-in client (the account area's own): it is not stored and not managed here`);
    const doc = await this.collection.findOne({ _id: clientId }, { projection: { secretSealed: 0 } });
    if (!doc) throw new NotFoundError(`no client with id "${clientId}"`);
    return record(doc);
  }

  /**
   * Applies a metadata change. The whole result is validated like a new client; the write is
   * conditional on the document being unchanged since it was read, so concurrent edits cannot
   * silently overwrite each other. Other stored metadata (e.g. from dynamic registration) is kept.
   */
  async update(clientId: string, patchInput: ClientMetadataPatch): Promise<UpdatedClient> {
    refuseBuiltInClient(clientId);
    const parsed = clientMetadataPatch.safeParse(patchInput);
    if (!parsed.success) throw InputError.fromZod(parsed.error, 'invalid client');
    const patch = parsed.data;
    if (Object.keys(patch).length === 0) throw new InputError('invalid client: nothing to change', { '(input)': 'name at least one field to change' });

    const doc = await this.collection.findOne({ _id: clientId });
    if (!doc) throw new NotFoundError(`no client with id "${clientId}"`);
    const before = doc.metadata;
    const after: Record<string, unknown> = { ...before, client_id: clientId };
    for (const [field, value] of Object.entries(patch)) {
      if (value === null) delete after[field];
      else after[field] = field === 'grant_types' || field === 'default_acr_values' ? [...new Set(value as string[])] : value;
    }
    // Response types follow the grant types unless given explicitly.
    if (patch.grant_types && !patch.response_types) {
      after.response_types = (after.grant_types as string[]).includes('authorization_code') ? ['code'] : [];
    }
    const problems = clientMetadataProblems(after, { redirectsChanged: 'grant_types' in patch || 'redirect_uris' in patch });
    if (Object.keys(problems).length > 0) throw problemsError(problems);

    const needsSecret = SECRET_AUTH_METHODS.has(String(after.token_endpoint_auth_method ?? 'client_secret_basic'));
    let clientSecret: string | undefined;
    let secretSealed = doc.secretSealed;
    if (needsSecret && !secretSealed) {
      clientSecret = newSecret();
      secretSealed = this.secretBox.seal(clientSecret, clientSecretContext(clientId));
    }
    const secretRemoved = !needsSecret && doc.secretSealed !== undefined;
    const currentSecret = needsSecret ? (clientSecret ?? this.secretBox.open(doc.secretSealed!, clientSecretContext(clientId))) : undefined;
    await providerValidate(this.provider, { ...after, ...(currentSecret ? { client_secret: currentSecret } : {}) });

    const now = new Date();
    const updated = await this.writing(clientId, () =>
      this.collection.findOneAndUpdate(
        { _id: clientId, updatedAt: doc.updatedAt },
        {
          $set: { metadata: after, updatedAt: now, ...(clientSecret ? { secretSealed } : {}) },
          ...(secretRemoved ? { $unset: { secretSealed: '' } } : {}),
        },
        { returnDocument: 'after', projection: { secretSealed: 0 } },
      ),
    );
    if (!updated) throw new ConflictError('the client was changed by someone else at the same time; read it again and retry');

    const changes: UpdatedClient['changes'] = {};
    for (const field of new Set([...Object.keys(patch), ...(patch.grant_types ? ['response_types'] : [])])) {
      const was = comparable(field, before[field]);
      const is = comparable(field, after[field]);
      if (JSON.stringify(was) !== JSON.stringify(is)) changes[field] = { before: was, after: is };
    }
    return { client: record(updated), changes, ...(clientSecret ? { clientSecret } : {}), secretRemoved };
  }

  /** Replaces the secret of a client that authenticates with one. The new secret is returned once. */
  async rotateSecret(clientId: string): Promise<{ clientId: string; clientSecret: string }> {
    refuseBuiltInClient(clientId);
    const doc = await this.collection.findOne({ _id: clientId }, { projection: { metadata: 1, secretSealed: 1 } });
    if (!doc) throw new NotFoundError(`no client with id "${clientId}"`);
    const method = String(doc.metadata.token_endpoint_auth_method ?? 'client_secret_basic');
    if (!SECRET_AUTH_METHODS.has(method) || !doc.secretSealed) {
      throw new ConflictError(`this client authenticates with ${method} and has no secret to rotate`);
    }
    const clientSecret = newSecret();
    const rotated = await this.writing(clientId, () =>
      this.collection.updateOne(
        { _id: clientId, secretSealed: doc.secretSealed },
        { $set: { secretSealed: this.secretBox.seal(clientSecret, clientSecretContext(clientId)), updatedAt: new Date() } },
      ),
    );
    if (rotated.matchedCount === 0) throw new ConflictError('the client was changed by someone else at the same time; retry');
    // A rotation usually means the old secret leaked: what it obtained must stop working too.
    await removeArtifacts(this.connection, ['ClientCredentials'], 'clientId', clientId);
    return { clientId, clientSecret };
  }

  /**
   * Deletes the client first (so it can obtain nothing more), then every grant, token and code it
   * holds. Returns how many artifacts were revoked.
   */
  async remove(clientId: string): Promise<{ revoked: Record<string, number> }> {
    refuseBuiltInClient(clientId);
    const result = await this.writing(clientId, () => this.collection.deleteOne({ _id: clientId }));
    if (result.deletedCount === 0) throw new NotFoundError(`no client with id "${clientId}"`);
    const revoked = await removeArtifacts(this.connection, CLIENT_ARTIFACTS, 'clientId', clientId);
    return { revoked };
  }
}
