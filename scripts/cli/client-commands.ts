/** `client create|list|show|delete`: the relying parties registered with Gatehouse. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { cliCall } from '../../src/admin/call.js';
import { AUTH_METHODS, GRANT_TYPES, type ClientSummary, type NewClientInput } from '../../src/oidc/clients.js';
import { CliError, keyValues, Printer, table, type CliIO } from './output.js';
import { cliEnvironment, withServices } from './session.js';

interface CreateOptions {
  name: string;
  redirectUri?: string[];
  postLogoutRedirectUri?: string[];
  grantType?: Array<(typeof GRANT_TYPES)[number]>;
  authMethod?: (typeof AUTH_METHODS)[number];
  jwksFile?: string;
  scope?: string;
  firstParty?: boolean;
  requireMfa?: boolean;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function collectGrantType(value: string, previous: string[] | undefined): string[] {
  if (!(GRANT_TYPES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`Allowed choices are ${GRANT_TYPES.join(', ')}.`);
  }
  return [...(previous ?? []), value];
}

/** Private-key members of RSA, EC, OKP and symmetric JWKs. */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** `npm run cli` runs in the project folder; a relative path means one from where npm was started. */
function fromInvocationDir(file: string): string {
  const base = process.env.npm_lifecycle_event === 'cli' && process.env.INIT_CWD ? process.env.INIT_CWD : process.cwd();
  return path.resolve(base, file);
}

export async function readJwksFile(file: string): Promise<{ keys: Array<Record<string, unknown>> }> {
  let text: string;
  try {
    text = await readFile(fromInvocationDir(file), 'utf8');
  } catch (err) {
    throw new CliError(`--jwks-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CliError(`--jwks-file: ${file} is not valid JSON: ${(err as Error).message}`);
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k))) {
    throw new CliError(`--jwks-file: ${file} must hold a JWK Set: {"keys": [ … public keys … ]}`);
  }
  keys.forEach((key: Record<string, unknown>, i) => {
    const secret = PRIVATE_JWK_MEMBERS.filter((member) => member in key);
    if (secret.length > 0) {
      throw new CliError(`--jwks-file: keys[${i}] contains private key material (${secret.join(', ')}); give only the public keys`);
    }
  });
  return { keys: keys as Array<Record<string, unknown>> };
}

function summaryJson(c: ClientSummary) {
  return {
    client_id: c.clientId,
    client_name: c.name,
    grant_types: c.grantTypes,
    token_endpoint_auth_method: c.authMethod,
    first_party: c.firstParty,
    redirect_uris: c.redirectUris,
    ...(c.createdAt ? { created_at: c.createdAt.toISOString() } : {}),
  };
}

/** Never prints a secret, whatever the stored metadata holds. */
function withoutSecret(metadata: Record<string, unknown>): Record<string, unknown> {
  const { client_secret: _secret, ...rest } = metadata;
  return rest;
}

export function clientCommands(io: CliIO): Command {
  const client = new Command('client').description('register, list, show and delete OIDC clients (relying parties)');

  client
    .command('create')
    .description('register a client; prints its client_id and (once only) its client_secret')
    .requiredOption('--name <name>', 'the name people see on the consent page')
    .option('--redirect-uri <uri>', 'a redirect URI (repeatable; https, or http only for localhost/127.0.0.1)', collect)
    .option('--post-logout-redirect-uri <uri>', 'a post-logout redirect URI (repeatable)', collect)
    .addOption(
      new Option('--grant-type <type>', `a grant type (repeatable): ${GRANT_TYPES.join(', ')} (default: authorization_code and refresh_token)`).argParser(
        collectGrantType,
      ),
    )
    .addOption(new Option('--auth-method <method>', 'how the client authenticates at the token endpoint').choices(AUTH_METHODS).default('client_secret_basic'))
    .option('--jwks-file <path>', "file with the client's public JWK Set (for private_key_jwt)")
    .option('--scope <scopes>', 'space-separated scopes the client may request, e.g. "openid profile"')
    .option('--first-party', 'trusted first-party application: skips the consent page')
    .option('--require-mfa', 'every sign-in to this client needs a second factor, whatever the account\'s market policy says')
    .option('--json', 'print the result as JSON')
    .action(async (opts: CreateOptions) => {
      const env = cliEnvironment();
      const jwks = opts.jwksFile ? await readJwksFile(opts.jwksFile) : undefined;
      const input: NewClientInput = {
        name: opts.name,
        redirectUris: opts.redirectUri ?? [],
        postLogoutRedirectUris: opts.postLogoutRedirectUri ?? [],
        ...(opts.grantType ? { grantTypes: opts.grantType } : {}),
        ...(opts.authMethod ? { authMethod: opts.authMethod } : {}),
        ...(opts.scope !== undefined ? { scope: opts.scope } : {}),
        ...(jwks ? { jwks } : {}),
        firstParty: opts.firstParty === true,
        requireMfa: opts.requireMfa === true,
      };
      const created = await withServices(env, (services) => services.admin.clientOps.create(input, cliCall()));
      const { client_id: _id, ...metadata } = created.metadata;
      const data = { client_id: created.clientId, ...(created.clientSecret ? { client_secret: created.clientSecret } : {}), ...withoutSecret(metadata) };
      new Printer(io, opts.json === true).result(data, () => {
        const lines = [
          `Created client "${created.name}".`,
          '',
          keyValues([
            ['client_id', created.clientId],
            ...(created.clientSecret ? ([['client_secret', created.clientSecret]] as Array<[string, unknown]>) : []),
            ['grant types', created.grantTypes],
            ['auth method', created.authMethod],
            ['first-party', created.firstParty],
            ['redirect URIs', created.redirectUris],
            ['post-logout URIs', metadata.post_logout_redirect_uris],
            ...(metadata.scope ? ([['scope', metadata.scope]] as Array<[string, unknown]>) : []),
          ]),
        ];
        if (created.clientSecret) {
          lines.push('The client_secret is shown only this once: Gatehouse stores it encrypted and will never display it again. Copy it now.', '');
        }
        return lines.join('\n');
      });
    });

  client
    .command('list')
    .description('list the registered clients')
    .option('--json', 'print the result as JSON (an array)')
    .action(async (opts: { json?: boolean }) => {
      const clients = await withServices(cliEnvironment(), (services) => services.clients.list());
      new Printer(io, opts.json === true).result(clients.map(summaryJson), () =>
        clients.length === 0
          ? 'No clients registered.\n'
          : table(
              ['CLIENT_ID', 'NAME', 'GRANT TYPES', 'AUTH METHOD', 'FIRST-PARTY', 'REDIRECT URIS'],
              clients.map((c) => [c.clientId, c.name, c.grantTypes, c.authMethod, c.firstParty, c.redirectUris]),
            ),
      );
    });

  client
    .command('show')
    .description("show a client's registration (never its secret)")
    .argument('<client-id>', 'the client_id')
    .option('--json', 'print the result as JSON')
    .action(async (clientId: string, opts: { json?: boolean }) => {
      const shown = await withServices(cliEnvironment(), (services) => services.clients.show(clientId));
      const { client_id: _id, ...metadata } = withoutSecret(shown.metadata);
      const data = { client_id: shown.clientId, ...metadata, ...(shown.createdAt ? { created_at: shown.createdAt.toISOString() } : {}) };
      new Printer(io, opts.json === true).result(data, () => keyValues(Object.entries(data), ''));
    });

  client
    .command('delete')
    .description('delete a client and revoke its grants and tokens; it can no longer sign anyone in or get tokens')
    .argument('<client-id>', 'the client_id')
    .option('--json', 'print the result as JSON')
    .action(async (clientId: string, opts: { json?: boolean }) => {
      await withServices(cliEnvironment(), (services) => services.admin.clientOps.remove(clientId, cliCall()));
      new Printer(io, opts.json === true).result({ client_id: clientId, deleted: true }, () => `Deleted client ${clientId}.\n`);
    });

  return client;
}
