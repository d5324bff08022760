/**
 * `client update|rotate-secret`, `registration-token create|list|revoke`: the admin API's client
 * operations, on the database directly. Every change is audited as the CLI.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { cliCall } from '../../src/admin/call.js';
import { AUTH_METHODS, GRANT_TYPES, type ClientMetadataPatch } from '../../src/oidc/clients.js';
import { ACR } from '../../src/oidc/scopes.js';
import { MAX_REGISTRATION_TOKEN_SECONDS } from '../../src/oidc/registration.js';
import { readJwksFile } from './client-commands.js';
import { CliError, keyValues, Printer, table, type CliIO } from './output.js';
import { cliEnvironment, withServices } from './session.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function collectGrantType(value: string, previous: string[] | undefined): string[] {
  if (!(GRANT_TYPES as readonly string[]).includes(value)) throw new InvalidArgumentError(`Allowed choices are ${GRANT_TYPES.join(', ')}.`);
  return [...(previous ?? []), value];
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** "3600", "90s", "30m", "12h" or "7d" → seconds. */
export function parseDuration(value: string): number {
  const match = /^(\d{1,9})([smhd]?)$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError('Give a number of seconds, or a number with s, m, h or d (e.g. 12h, 7d).');
  const seconds = Number(match[1]) * UNITS[match[2] || 's']!;
  if (seconds < 60 || seconds > MAX_REGISTRATION_TOKEN_SECONDS) throw new InvalidArgumentError('Must be between 1 minute and 366 days.');
  return seconds;
}

function positiveInt(value: string): number {
  if (!/^\d{1,6}$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('Give a whole number of at least 1.');
  return Number(value);
}

interface UpdateOptions {
  name?: string;
  redirectUri?: string[];
  postLogoutRedirectUri?: string[];
  grantType?: Array<(typeof GRANT_TYPES)[number]>;
  authMethod?: (typeof AUTH_METHODS)[number];
  jwksFile?: string;
  removeJwks?: boolean;
  scope?: string;
  removeScope?: boolean;
  firstParty?: boolean;
  requireMfa?: boolean;
  json?: boolean;
}

export function addClientAdminCommands(client: Command, io: CliIO): void {
  client.description('register, list, show, update and delete OIDC clients (relying parties)');

  client
    .command('update')
    .description('change a client; only the options given change (lists are replaced)')
    .argument('<client-id>', 'the client_id')
    .option('--name <name>', 'the name people see on the consent page')
    .option('--redirect-uri <uri>', 'redirect URIs: replaces the list (repeatable)', collect)
    .option('--post-logout-redirect-uri <uri>', 'post-logout redirect URIs: replaces the list (repeatable)', collect)
    .addOption(new Option('--grant-type <type>', `grant types: replaces the list (repeatable): ${GRANT_TYPES.join(', ')}`).argParser(collectGrantType))
    .addOption(new Option('--auth-method <method>', 'how the client authenticates at the token endpoint (a new secret is issued if it needs one)').choices(AUTH_METHODS))
    .option('--jwks-file <path>', "file with the client's public JWK Set (for private_key_jwt)")
    .option('--remove-jwks', 'remove the public keys')
    .option('--scope <scopes>', 'space-separated scopes the client may request, e.g. "openid profile admin:auditor"')
    .option('--remove-scope', 'remove the scope list (the client may then ask for any non-admin scope)')
    .option('--first-party', 'trusted first-party application: skips the consent page')
    .option('--no-first-party', 'not first-party: people see the consent page')
    .option('--require-mfa', 'every sign-in to this client needs a second factor (default_acr_values)')
    .option('--no-require-mfa', 'remove default_acr_values: the market policy decides again')
    .option('--json', 'print the result as JSON')
    .action(async (clientId: string, opts: UpdateOptions) => {
      if (opts.jwksFile && opts.removeJwks) throw new CliError('give --jwks-file or --remove-jwks, not both');
      if (opts.scope !== undefined && opts.removeScope) throw new CliError('give --scope or --remove-scope, not both');
      const jwks = opts.jwksFile ? await readJwksFile(opts.jwksFile) : undefined;
      const patch: ClientMetadataPatch = {
        ...(opts.name !== undefined ? { client_name: opts.name } : {}),
        ...(opts.redirectUri ? { redirect_uris: opts.redirectUri } : {}),
        ...(opts.postLogoutRedirectUri ? { post_logout_redirect_uris: opts.postLogoutRedirectUri } : {}),
        ...(opts.grantType ? { grant_types: opts.grantType } : {}),
        ...(opts.authMethod ? { token_endpoint_auth_method: opts.authMethod } : {}),
        ...(jwks ? { jwks } : opts.removeJwks ? { jwks: null } : {}),
        ...(opts.scope !== undefined ? { scope: opts.scope } : opts.removeScope ? { scope: null } : {}),
        ...(opts.firstParty !== undefined ? { first_party: opts.firstParty } : {}),
        ...(opts.requireMfa !== undefined ? { default_acr_values: opts.requireMfa ? [ACR.multiFactor] : null } : {}),
      };
      if (Object.keys(patch).length === 0) throw new CliError('nothing to change: give at least one option (see --help)');
      const updated = await withServices(cliEnvironment(), (services) => services.admin.clientOps.update(clientId, patch, cliCall()));
      const data = { client_id: clientId, changes: updated.changes, ...(updated.clientSecret ? { client_secret: updated.clientSecret } : {}) };
      new Printer(io, opts.json === true).result(data, () => {
        const changed = Object.entries(updated.changes);
        const lines = [
          changed.length === 0 ? `Nothing changed for client ${clientId}.` : `Updated client ${clientId}:`,
          '',
          ...(changed.length ? [keyValues(changed.map(([field, c]) => [field, `${JSON.stringify(c.before)} → ${JSON.stringify(c.after)}`]))] : []),
        ];
        if (updated.clientSecret) lines.push(keyValues([['client_secret', updated.clientSecret]]), 'The new client_secret is shown only this once. Copy it now.', '');
        return lines.join('\n');
      });
    });

  client
    .command('rotate-secret')
    .description('replace the client secret; the old one stops working at once, the new one is shown once')
    .argument('<client-id>', 'the client_id')
    .option('--json', 'print the result as JSON')
    .action(async (clientId: string, opts: { json?: boolean }) => {
      const rotated = await withServices(cliEnvironment(), (services) => services.admin.clientOps.rotateSecret(clientId, cliCall()));
      const data = { client_id: rotated.clientId, client_secret: rotated.clientSecret };
      new Printer(io, opts.json === true).result(data, () =>
        [keyValues([['client_id', data.client_id], ['client_secret', data.client_secret]]), 'The new client_secret is shown only this once: the old one no longer works. Copy it now.', ''].join('\n'),
      );
    });
}

export function registrationTokenCommands(io: CliIO): Command {
  const tokens = new Command('registration-token').description('initial access tokens for dynamic client registration (POST /reg)');

  tokens
    .command('create')
    .description('mint an initial access token; it is printed once')
    .option('--expires-in <duration>', 'lifetime: seconds, or e.g. 30m, 12h, 7d (default: no expiry)', parseDuration)
    .option('--max-uses <n>', 'how many clients it may register (default: unlimited)', positiveInt)
    .option('--description <text>', 'what it is for')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { expiresIn?: number; maxUses?: number; description?: string; json?: boolean }) => {
      const minted = await withServices(cliEnvironment(), (services) =>
        services.admin.clientOps.mintRegistrationToken(
          {
            ...(opts.expiresIn ? { expiresInSeconds: opts.expiresIn } : {}),
            ...(opts.maxUses ? { maxUses: opts.maxUses } : {}),
            ...(opts.description ? { description: opts.description } : {}),
          },
          cliCall(),
        ),
      );
      new Printer(io, opts.json === true).result(minted, () =>
        [
          keyValues([
            ['id', minted.id],
            ['token', minted.token],
            ['expires', minted.expiresAt ?? 'never'],
            ['max uses', minted.maxUses ?? 'unlimited'],
          ]),
          'Send the token as "Authorization: Bearer <token>" to the registration endpoint. It is shown only this once.',
          '',
        ].join('\n'),
      );
    });

  tokens
    .command('list')
    .description('list live initial access tokens (never their values)')
    .option('--json', 'print the result as JSON (an array)')
    .action(async (opts: { json?: boolean }) => {
      const list = await withServices(cliEnvironment(), (services) => services.admin.registrationTokens.list());
      new Printer(io, opts.json === true).result(list, () =>
        list.length === 0
          ? 'No registration tokens.\n'
          : table(
              ['ID', 'DESCRIPTION', 'USES', 'MAX USES', 'EXPIRES', 'CREATED'],
              list.map((t) => [t.id, t.description, t.uses, t.maxUses ?? 'unlimited', t.expiresAt ?? 'never', t.createdAt]),
            ),
      );
    });

  tokens
    .command('revoke')
    .description('revoke an initial access token: it can register no more clients')
    .argument('<id>', 'the token id (from list)')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const revoked = await withServices(cliEnvironment(), (services) => services.admin.clientOps.revokeRegistrationToken(id, cliCall()));
      new Printer(io, opts.json === true).result({ ...revoked, revoked: true }, () => `Revoked registration token ${id} (used ${revoked.uses} time(s)).\n`);
    });

  return tokens;
}
