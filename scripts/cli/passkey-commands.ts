/** `account passkeys|revoke-passkeys`: an account's passkeys and security keys, as the admin API offers them. */
import type { Command } from 'commander';
import { cliCall } from '../../src/admin/call.js';
import { AdminHttpError } from '../../src/admin/errors.js';
import type { Services } from '../../src/app.js';
import { NotFoundError } from '../../src/errors.js';
import { CliError, Printer, table, type CliIO } from './output.js';
import { cliEnvironment, withServices } from './session.js';

async function accountIdOf(services: Services, reference: string): Promise<string> {
  const account = (await services.accounts.findByAccountId(reference)) ?? (await services.accounts.findByLogin(reference));
  if (!account) throw new NotFoundError(`no account with id, User ID or email "${reference}"`);
  return account.accountId;
}

async function adminErrorsAsCli<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof AdminHttpError) throw new CliError(err.message);
    throw err;
  }
}

export function addPasskeyCommands(account: Command, io: CliIO): void {
  account
    .command('passkeys')
    .description("list an account's passkeys and security keys")
    .argument('<account>', 'account ID (sub), User ID or email')
    .option('--json', 'print the result as JSON')
    .action(async (reference: string, opts: { json?: boolean }) => {
      const items = await withServices(cliEnvironment(), async (services) => services.admin.passkeyOps.list(await accountIdOf(services, reference)));
      new Printer(io, opts.json === true).result({ items }, () =>
        items.length === 0
          ? 'No passkeys.\n'
          : table(
              ['credential id', 'name', 'kind', 'backed up', 'added', 'last used'],
              items.map((p) => [p.credentialId, p.name, p.deviceType === 'multiDevice' ? 'synced' : 'one device', p.backedUp ? 'yes' : 'no', p.createdAt, p.lastUsedAt ?? 'never']),
            ),
      );
    });

  account
    .command('revoke-passkeys')
    .description("revoke an account's passkeys: one (--credential <id>) or all of them")
    .argument('<account>', 'account ID (sub), User ID or email')
    .option('--credential <id>', 'only this credential (see: account passkeys)')
    .option('--json', 'print the result as JSON')
    .action(async (reference: string, opts: { credential?: string; json?: boolean }) => {
      const result = await withServices(cliEnvironment(), async (services) => {
        const accountId = await accountIdOf(services, reference);
        return adminErrorsAsCli(() =>
          opts.credential === undefined ? services.admin.passkeyOps.revokeAll(accountId, cliCall()) : services.admin.passkeyOps.revoke(accountId, opts.credential, cliCall()),
        );
      });
      new Printer(io, opts.json === true).result(result, () => `Revoked ${result.revoked} passkey(s); they can no longer sign in.\n`);
    });
}
