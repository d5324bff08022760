/**
 * `account show|search|update|disable|enable|unlock|reset-second-factor|revoke-sessions|invite|
 * resend-invitation|reset-password|devices|revoke-devices`: the admin API's account operations, on the database directly.
 * An account is named by its account ID (sub), User ID or email. Every change is audited as the CLI.
 */
import { Command, Option } from 'commander';
import { ACCOUNT_STATUS_FILTER, type AccountPatch, type AccountView, type StatusAction } from '../../src/accounts/account-admin.js';
import { cliCall } from '../../src/admin/call.js';
import { AdminHttpError } from '../../src/admin/errors.js';
import type { Services } from '../../src/app.js';
import { NotFoundError } from '../../src/errors.js';
import { CliError, keyValues, Printer, table, type CliIO } from './output.js';
import { cliEnvironment, withServices } from './session.js';
import { accountFields } from './account-commands.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Finds an account by account ID first, then by User ID or email. */
async function resolveAccountId(services: Services, reference: string): Promise<string> {
  const byId = await services.accounts.findByAccountId(reference);
  if (byId) return byId.accountId;
  const byLogin = await services.accounts.findByLogin(reference);
  if (byLogin) return byLogin.accountId;
  throw new NotFoundError(`no account with id, User ID or email "${reference}"`);
}

/** The admin layer's HTTP-shaped errors (403, 501) become plain CLI errors. */
async function run<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof AdminHttpError) throw new CliError(err.message);
    throw err;
  }
}

function accountBlock(a: AccountView): string {
  return keyValues([
    ['accountId (sub)', a.accountId],
    ['userId', a.userId],
    ['email', a.email ? `${a.email}${a.emailVerified ? ' (verified)' : ''}` : null],
    ['name', a.name],
    ['phone', a.phone ? `${a.phone}${a.phoneVerified ? ' (verified)' : ''}` : null],
    ['market', a.market],
    ['roles', a.roles],
    ['status', a.status],
    ['password set', a.hasPassword],
    ...(a.lockedUntil ? ([['locked until', a.lockedUntil]] as Array<[string, unknown]>) : []),
    ['created', a.createdAt],
    ['updated', a.updatedAt],
  ]);
}

interface UpdateOptions {
  name?: string;
  email?: string;
  removeEmail?: boolean;
  phone?: string;
  removePhone?: boolean;
  market?: string;
  role?: string[];
  addRole?: string[];
  removeRole?: string[];
  json?: boolean;
}

export function addAccountAdminCommands(account: Command, io: CliIO): void {
  account.description('create, list, search, show, update and manage accounts');

  account
    .command('show')
    .description('show an account (never its password or second-factor data)')
    .argument('<account>', 'account ID (sub), User ID or email')
    .option('--json', 'print the result as JSON')
    .action(async (reference: string, opts: { json?: boolean }) => {
      const data = await withServices(cliEnvironment(), async (services) => {
        const accountId = await resolveAccountId(services, reference);
        const shown = await services.admin.accountAdmin.get(accountId);
        const pending = shown.hasPassword ? null : await services.admin.invitations.pending(accountId);
        return { ...shown, pendingInvitation: pending ? { expiresAt: pending.expiresAt.toISOString() } : null };
      });
      new Printer(io, opts.json === true).result(data, () => accountBlock(data) + (data.pendingInvitation ? `  invitation expires ${data.pendingInvitation.expiresAt}\n` : ''));
    });

  account
    .command('search')
    .description('search accounts by part of the User ID or email, and by status or role')
    .argument('[query]', 'part of the User ID or email (any letter case)')
    .addOption(new Option('--status <status>', 'only accounts with this status').choices(ACCOUNT_STATUS_FILTER))
    .option('--role <role>', 'only accounts with this role')
    .option('--limit <n>', 'at most this many (default 50, at most 1000)', (v) => {
      if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 1000) throw new CliError('--limit must be a whole number from 1 to 1000');
      return Number(v);
    })
    .option('--json', 'print the result as JSON (an array)')
    .action(async (query: string | undefined, opts: { status?: (typeof ACCOUNT_STATUS_FILTER)[number]; role?: string; limit?: number; json?: boolean }) => {
      const page = await withServices(cliEnvironment(), (services) =>
        services.admin.accountAdmin.page({
          limit: opts.limit ?? 50,
          ...(query ? { q: query } : {}),
          ...(opts.status ? { status: opts.status } : {}),
          ...(opts.role ? { role: opts.role } : {}),
        }),
      );
      new Printer(io, opts.json === true).result(page.items, () =>
        page.items.length === 0
          ? 'No matching accounts.\n'
          : table(
              ['ACCOUNT_ID (SUB)', 'USER ID', 'EMAIL', 'NAME', 'ROLES', 'STATUS'],
              page.items.map((a) => [a.accountId, a.userId, a.email, a.name, a.roles, a.status]),
            ) + (page.more ? '(more accounts match: narrow the search or raise --limit)\n' : ''),
      );
    });

  account
    .command('update')
    .description('change an account; only the options given change')
    .argument('<account>', 'account ID (sub), User ID or email')
    .option('--name <name>', 'display name')
    .option('--email <email>', 'email address (becomes unverified)')
    .option('--remove-email', 'remove the email address')
    .option('--phone <e164>', 'phone number in E.164 form (becomes unverified)')
    .option('--remove-phone', 'remove the phone number')
    .option('--market <code>', 'market code')
    .option('--role <role>', 'set the roles to exactly these (repeatable)', collect)
    .option('--add-role <role>', 'add a role (repeatable), e.g. admin, helpdesk, auditor', collect)
    .option('--remove-role <role>', 'remove a role (repeatable)', collect)
    .option('--json', 'print the result as JSON')
    .action(async (reference: string, opts: UpdateOptions) => {
      if (opts.email !== undefined && opts.removeEmail) throw new CliError('give --email or --remove-email, not both');
      if (opts.phone !== undefined && opts.removePhone) throw new CliError('give --phone or --remove-phone, not both');
      if (opts.role && (opts.addRole || opts.removeRole)) throw new CliError('give --role, or --add-role/--remove-role, not both');
      const result = await withServices(cliEnvironment(), async (services) => {
        const accountId = await resolveAccountId(services, reference);
        const patch: AccountPatch = {
          ...(opts.name !== undefined ? { name: opts.name } : {}),
          ...(opts.email !== undefined ? { email: opts.email } : opts.removeEmail ? { email: null } : {}),
          ...(opts.phone !== undefined ? { phone: opts.phone } : opts.removePhone ? { phone: null } : {}),
          ...(opts.market !== undefined ? { market: opts.market } : {}),
          ...(opts.role ? { roles: opts.role } : {}),
        };
        if (opts.addRole || opts.removeRole) {
          const current = (await services.admin.accountAdmin.get(accountId)).roles;
          patch.roles = [...current, ...(opts.addRole ?? [])].filter((role) => !(opts.removeRole ?? []).includes(role));
        }
        if (Object.keys(patch).length === 0) throw new CliError('nothing to change: give at least one option (see --help)');
        return services.admin.accountOps.update(accountId, patch, cliCall());
      });
      new Printer(io, opts.json === true).result(result, () => {
        const changed = Object.entries(result.changes);
        return changed.length === 0
          ? `Nothing changed for "${result.account.userId}".\n`
          : [`Updated account "${result.account.userId}":`, '', keyValues(changed.map(([field, c]) => [field, `${JSON.stringify(c.before)} → ${JSON.stringify(c.after)}`]))].join('\n');
      });
    });

  const statusCommand = (action: StatusAction, description: string, done: string) =>
    account
      .command(action)
      .description(description)
      .argument('<account>', 'account ID (sub), User ID or email')
      .option('--json', 'print the result as JSON')
      .action(async (reference: string, opts: { json?: boolean }) => {
        const result = await withServices(cliEnvironment(), async (services) => {
          const accountId = await resolveAccountId(services, reference);
          return run(() => services.admin.accountOps.setStatus(accountId, action, cliCall()));
        });
        new Printer(io, opts.json === true).result(result, () => {
          const revoked = result.revoked ? ` Ended ${result.revoked.sessions} session(s), revoked ${result.revoked.grants} grant(s) and ${result.revoked.tokens} token(s).` : '';
          const lifted = result.cleared
            ? [
                result.cleared.lockout && 'the lock after wrong passwords',
                result.cleared.secondFactorPause && 'the pause after wrong two-step verification codes',
                result.cleared.signInThrottle && 'the sign-in rate limit',
              ].filter((x): x is string => typeof x === 'string')
            : [];
          const cleared = lifted.length ? ` Cleared ${lifted.length > 1 ? `${lifted.slice(0, -1).join(', ')} and ${lifted.at(-1)!}` : lifted[0]!}.` : '';
          return `${done} account "${result.account.userId}" (now ${result.account.status}).${cleared}${revoked}\n`;
        });
      });
  statusCommand('disable', 'disable an account: it can no longer sign in; its sessions, grants and tokens are revoked', 'Disabled');
  statusCommand('enable', 'enable a disabled account', 'Enabled');
  statusCommand('unlock', 'unlock an account: lifts a lock after wrong passwords, a pause after wrong two-step verification codes and the sign-in rate limit on its User ID and email', 'Unlocked');

  account
    .command('reset-second-factor')
    .description('remove every second-factor credential of an account; it enrols again at its next sign-in')
    .argument('<account>', 'account ID (sub), User ID or email')
    .option('--json', 'print the result as JSON')
    .action(async (reference: string, opts: { json?: boolean }) => {
      const result = await withServices(cliEnvironment(), async (services) => {
        const accountId = await resolveAccountId(services, reference);
        return { accountId, ...(await run(() => services.admin.accountOps.resetSecondFactor(accountId, cliCall()))) };
      });
      new Printer(io, opts.json === true).result(result, () => `Reset the second factor of ${result.accountId}: removed ${result.credentialsRemoved} credential(s).\n`);
    });

  account
    .command('revoke-sessions')
    .description('end every session of an account and revoke all its grants and tokens')
    .argument('<account>', 'account ID (sub), User ID or email')
    .option('--json', 'print the result as JSON')
    .action(async (reference: string, opts: { json?: boolean }) => {
      const result = await withServices(cliEnvironment(), async (services) => {
        const accountId = await resolveAccountId(services, reference);
        return { accountId, revoked: await services.admin.accountOps.revokeSessions(accountId, cliCall()) };
      });
      const { sessions, grants, tokens } = result.revoked;
      new Printer(io, opts.json === true).result(result, () => `Ended ${sessions} session(s), revoked ${grants} grant(s) and ${tokens} token(s) of ${result.accountId}.\n`);
    });

  account
    .command('invite')
    .description('create an account without a password and email it a single-use activation link')
    .requiredOption('--user-id <id>', 'the User ID people sign in with')
    .requiredOption('--email <email>', 'email address (the invitation goes there)')
    .requiredOption('--name <name>', 'display name')
    .option('--market <code>', 'market code, e.g. US (default: default)')
    .option('--role <role>', 'a role (repeatable)', collect)
    .option('--phone <e164>', 'phone number in E.164 form')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { userId: string; email: string; name: string; market?: string; role?: string[]; phone?: string; json?: boolean }) => {
      const result = await withServices(cliEnvironment(), (services) =>
        services.admin.accountOps.create(
          accountFields(opts),
          cliCall(),
        ),
      );
      if (!result.invitation?.sent) {
        throw new CliError(
          `created account ${result.account.accountId} ("${result.account.userId}"), but the invitation mail could not be sent: check the mail settings (SMTP_URL), then run: npm run cli -- account resend-invitation ${result.account.accountId}`,
        );
      }
      new Printer(io, opts.json === true).result(result, () =>
        [
          `Created account "${result.account.userId}".`,
          '',
          accountBlock(result.account),
          `An activation invitation was mailed to ${result.account.email}; the link works once, until ${result.invitation!.expiresAt}.\n`,
        ].join('\n'),
      );
    });

  account
    .command('resend-invitation')
    .description('mail a new activation link to an account that has no password yet (the old link stops working)')
    .argument('<account>', 'account ID (sub), User ID or email')
    .option('--json', 'print the result as JSON')
    .action(async (reference: string, opts: { json?: boolean }) => {
      const invitation = await withServices(cliEnvironment(), async (services) => services.admin.accountOps.resendInvitation(await resolveAccountId(services, reference), cliCall()));
      if (!invitation.sent) throw new CliError('the invitation mail could not be sent: check the mail settings (SMTP_URL)');
      new Printer(io, opts.json === true).result({ invitation }, () => `Mailed a new invitation; the link works once, until ${invitation.expiresAt}.\n`);
    });

  account
    .command('reset-password')
    .description('mail the person a request to reset their password through self-service recovery (/recover)')
    .argument('<account>', 'account ID (sub), User ID or email')
    .option('--json', 'print the result as JSON')
    .action(async (reference: string, opts: { json?: boolean }) => {
      const result = await withServices(cliEnvironment(), async (services) => run(async () => services.admin.accountOps.requestPasswordReset(await resolveAccountId(services, reference), cliCall())));
      if (!result.sent) throw new CliError('the password reset request could not be mailed: check the mail settings (SMTP_URL)');
      new Printer(io, opts.json === true).result(result, () => 'Mailed a request to reset the password through /recover.\n');
    });

  account
    .command('devices')
    .description("list an account's trusted (remembered) devices")
    .argument('<account>', 'account ID (sub), User ID or email')
    .option('--json', 'print the result as JSON')
    .action(async (reference: string, opts: { json?: boolean }) => {
      const items = await withServices(cliEnvironment(), async (services) => services.admin.accountOps.listTrustedDevices(await resolveAccountId(services, reference)));
      new Printer(io, opts.json === true).result({ items }, () =>
        items.length === 0 ? 'No trusted devices.\n' : table(['id', 'device', 'last seen', 'last IP', 'trusted until'], items.map((d) => [d.id, d.label, d.lastSeenAt, d.lastIp ?? '', d.expiresAt])),
      );
    });

  account
    .command('revoke-devices')
    .description('stop trusting devices of an account: one (--device <id>) or all of them')
    .argument('<account>', 'account ID (sub), User ID or email')
    .option('--device <id>', 'only this device (see: account devices)')
    .option('--json', 'print the result as JSON')
    .action(async (reference: string, opts: { device?: string; json?: boolean }) => {
      const result = await withServices(cliEnvironment(), async (services) => {
        const accountId = await resolveAccountId(services, reference);
        if (opts.device === undefined) return run(() => services.admin.accountOps.revokeAllTrustedDevices(accountId, cliCall()));
        await run(() => services.admin.accountOps.revokeTrustedDevice(accountId, opts.device!, cliCall()));
        return { revoked: 1 };
      });
      new Printer(io, opts.json === true).result(result, () => `Revoked ${result.revoked} trusted device(s); their next sign-in asks for the second factor.\n`);
    });
}
