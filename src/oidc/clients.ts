/**
 * The client registry: create, list, show and delete relying parties. Clients are stored through the
 * adapter's Client model (src/oidc/adapter.ts), so oidc-provider reads exactly what we write, and
 * every new client is validated by oidc-provider's own schema plus Gatehouse's rules.
 */
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mongoose';
import type Provider from 'oidc-provider';
import type { Adapter } from 'oidc-provider';
import { z } from 'zod';
import { InputError, NotFoundError } from '../errors.js';
import { CLIENTS_COLLECTION, type ClientDocument } from './adapter.js';
import { grantShapeProblems } from './client-rules.js';

/** oidc-provider exposes each model's adapter at run time; its type definitions do not declare it. */
export function clientAdapter(provider: Provider): Adapter {
  return (provider.Client as unknown as { adapter: Adapter }).adapter;
}

export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;

export const newClientInput = z.object({
  name: z.string().trim().min(1, 'must not be empty').max(200),
  redirectUris: z.array(z.string()).default([]),
  postLogoutRedirectUris: z.array(z.string()).default([]),
  grantTypes: z.array(z.enum(GRANT_TYPES)).min(1).default(['authorization_code', 'refresh_token']),
  authMethod: z.enum(AUTH_METHODS).default('client_secret_basic'),
  scope: z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/, 'must be space-separated scope names').optional(),
  firstParty: z.boolean().default(false),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).optional(),
  clientId: z.string().regex(/^[A-Za-z0-9._~-]{3,128}$/, 'must be 3-128 URL-safe characters').optional(),
  clientSecret: z.string().min(32, 'must be at least 32 characters').optional(),
});
export type NewClientInput = z.input<typeof newClientInput>;

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

export class ClientRegistry {
  constructor(
    private readonly provider: Provider,
    private readonly connection: Connection,
  ) {}

  private get collection() {
    return this.connection.collection<ClientDocument>(CLIENTS_COLLECTION);
  }

  /** Builds and validates client metadata without storing it. */
  async buildMetadata(input: NewClientInput): Promise<{ clientId: string; clientSecret?: string; metadata: Record<string, unknown> }> {
    const parsed = newClientInput.safeParse(input);
    if (!parsed.success) throw InputError.fromZod(parsed.error, 'invalid client');
    const c = parsed.data;
    const grantTypes = [...new Set(c.grantTypes)];
    const responseTypes = grantTypes.includes('authorization_code') ? ['code'] : [];
    const clientId = c.clientId ?? randomBytes(16).toString('base64url');
    const needsSecret = c.authMethod === 'client_secret_basic' || c.authMethod === 'client_secret_post';
    const clientSecret = needsSecret ? (c.clientSecret ?? randomBytes(32).toString('base64url')) : undefined;

    const problems = grantShapeProblems({ grant_types: grantTypes, response_types: responseTypes, redirect_uris: c.redirectUris });
    if (c.authMethod === 'private_key_jwt' && !c.jwks) problems.jwks = 'private_key_jwt needs the client public keys (jwks)';
    if (c.authMethod === 'none' && grantTypes.includes('client_credentials')) {
      problems.authMethod = 'client_credentials needs an authenticated client (not "none")';
    }
    for (const uri of c.postLogoutRedirectUris) {
      const problem = grantShapeProblems({ grant_types: ['client_credentials'], response_types: [], redirect_uris: [uri] }).redirect_uris;
      if (problem) problems.postLogoutRedirectUris = problem;
    }
    if (Object.keys(problems).length > 0) {
      throw new InputError(`invalid client: ${Object.entries(problems).map(([k, v]) => `${k}: ${v}`).join('; ')}`, problems);
    }

    const metadata: Record<string, unknown> = {
      client_id: clientId,
      client_name: c.name,
      redirect_uris: c.redirectUris,
      post_logout_redirect_uris: c.postLogoutRedirectUris,
      grant_types: grantTypes,
      response_types: responseTypes,
      token_endpoint_auth_method: c.authMethod,
      first_party: c.firstParty,
      ...(c.scope ? { scope: c.scope } : {}),
      ...(c.jwks ? { jwks: c.jwks } : {}),
      ...(clientSecret ? { client_secret: clientSecret } : {}),
    };
    try {
      await this.provider.Client.validate(metadata as never);
    } catch (err) {
      const e = err as { error_description?: string; message: string };
      const message = e.error_description ?? e.message;
      throw new InputError(`invalid client: ${message}`, { metadata: message });
    }
    return { clientId, ...(clientSecret ? { clientSecret } : {}), metadata };
  }

  async create(input: NewClientInput): Promise<CreatedClient> {
    const { clientId, clientSecret, metadata } = await this.buildMetadata(input);
    const existing = await this.collection.findOne({ _id: clientId }, { projection: { _id: 1 } });
    if (existing) throw new InputError(`a client with id "${clientId}" already exists`, { clientId: 'already exists' });
    await clientAdapter(this.provider).upsert(clientId, metadata as never, 0);
    const { client_secret: _omit, ...publicMetadata } = metadata;
    return { ...summarize(clientId, metadata, new Date()), ...(clientSecret ? { clientSecret } : {}), metadata: publicMetadata };
  }

  async list(): Promise<ClientSummary[]> {
    const docs = await this.collection.find({}, { projection: { secretSealed: 0 } }).sort({ createdAt: 1 }).toArray();
    return docs.map((d) => summarize(d._id, d.metadata, d.createdAt));
  }

  /** The client's metadata, without its secret. */
  async show(clientId: string): Promise<ClientSummary & { metadata: Record<string, unknown> }> {
    const doc = await this.collection.findOne({ _id: clientId }, { projection: { secretSealed: 0 } });
    if (!doc) throw new NotFoundError(`no client with id "${clientId}"`);
    return { ...summarize(doc._id, doc.metadata, doc.createdAt), metadata: { ...doc.metadata, client_id: doc._id } };
  }

  async remove(clientId: string): Promise<void> {
    const result = await this.collection.deleteOne({ _id: clientId });
    if (result.deletedCount === 0) throw new NotFoundError(`no client with id "${clientId}"`);
  }
}
