/** `account create|list`: the people who sign in with Gatehouse. */
import { Command } from 'commander';
import { cliCall } from '../../src/admin/call.js';
import { InputError } from '../../src/errors.js';
import { checkMarketAndRoles, newAccountInput, type NewAccountInput } from '../../src/accounts/accounts.js';
import type { AccountView } from '../../src/accounts/account-admin.js';
import { PolicyStore, policiesFile } from '../../src/policy/policy-store.js';
import { assertPasswordStrength, WeakPasswordError } from '../../src/factors/password/password.js';
import { keyValues, Printer, table, type CliIO } from './output.js';
import { promptNewPassword, readPasswordFromStdin } from './password.js';
import { cliEnvironment, withServices } from './session.js';

interface CreateOptions {
  userId: string;
  email: string;
  name: string;
  market?: string;
  role?: string[];
  phone?: string;
  passwordStdin?: boolean;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** What the CLI shows of an account: never the password hash. */
function accountJson(a: AccountView) {
  return {
    accountId: a.accountId,
    userId: a.userId,
    email: a.email,
    name: a.name,
    market: a.market,
    roles: [...a.roles],
    phone: a.phone,
    // As `account show` says it: a temporary lock after wrong passwords is "locked" until lockedUntil.
    status: a.status,
    lockedUntil: a.lockedUntil,
    createdAt: a.createdAt,
  };
}

const LIST_PAGE = 1000;

/** The account fields common to `account create` and `account invite`, from their flags. */
export function accountFields(opts: { userId: string; email: string; name: string; market?: string; role?: string[]; phone?: string }): NewAccountInput {
  return {
    userId: opts.userId,
    email: opts.email,
    name: opts.name,
    roles: opts.role ?? [],
    ...(opts.market !== undefined ? { market: opts.market } : {}),
    ...(opts.phone !== undefined ? { phone: opts.phone } : {}),
  };
}

export function accountCommands(io: CliIO): Command {
  const account = new Command('account').description('create and list accounts');

  account
    .command('create')
    .description('create an account with a password (asked on the terminal, or read with --password-stdin)')
    .requiredOption('--user-id <id>', 'the User ID people sign in with (letters, digits, ".", "_", "-")')
    .requiredOption('--email <email>', 'email address')
    .requiredOption('--name <name>', 'display name')
    .option('--market <code>', 'a market named in config/policies.json, e.g. US (default: default)')
    .option('--role <role>', 'a role: admin, helpdesk or auditor (repeatable)', collect)
    .option('--phone <e164>', 'phone number in E.164 form, e.g. +14155550123')
    .option('--password-stdin', 'read the password from stdin (one trailing newline is stripped)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: CreateOptions) => {
      const env = cliEnvironment();
      const fields: NewAccountInput = accountFields(opts);
      // Check the fields before asking for a password, so nobody types one for a request that will fail.
      // AccountService.create checks everything again; this only fails earlier, before any database work.
      const precheck = newAccountInput.safeParse(fields);
      if (!precheck.success) throw InputError.fromZod(precheck.error, 'invalid account');
      checkMarketAndRoles(precheck.data, PolicyStore.open(policiesFile(), { log: env.log }).marketCodes());

      // The password rules too (AccountService.create applies them again): a weak password is refused
      // before the database is opened, and on a terminal before it is typed a second time.
      const checkStrength = (candidate: string): void => {
        try {
          assertPasswordStrength(candidate, env.config.password, { userId: precheck.data.userId, email: precheck.data.email });
        } catch (err) {
          if (err instanceof WeakPasswordError) throw new InputError(err.message, { password: err.message });
          throw err;
        }
      };
      let password: string;
      if (opts.passwordStdin) {
        password = await readPasswordFromStdin(io);
        checkStrength(password);
      } else {
        password = await promptNewPassword(io, checkStrength);
      }

      const { account: created } = await withServices(env, (services) => services.admin.accountOps.create({ ...fields, password }, cliCall()));
      const data = accountJson(created);
      new Printer(io, opts.json === true).result(data, () =>
        [
          `Created account "${created.userId}".`,
          '',
          keyValues([
            ['accountId (sub)', data.accountId],
            ['userId', data.userId],
            ['email', data.email],
            ['name', data.name],
            ['market', data.market],
            ['roles', data.roles],
            ['phone', data.phone],
          ]),
        ].join('\n'),
      );
    });

  account
    .command('list')
    .description('list the accounts')
    .option('--json', 'print the result as JSON (an array)')
    .action(async (opts: { json?: boolean }) => {
      // The admin search's pages, so each page's locks are read in one query, the way `account show` reads them.
      const accounts = await withServices(cliEnvironment(), async (services) => {
        const all: AccountView[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await services.admin.accountAdmin.page({ limit: LIST_PAGE, ...(after !== undefined ? { after } : {}) });
          all.push(...page.items);
          if (!page.more || page.last === undefined) return all;
          after = page.last;
        }
      });
      const data = accounts.map(accountJson);
      new Printer(io, opts.json === true).result(data, () =>
        data.length === 0
          ? 'No accounts.\n'
          : table(
              ['ACCOUNT_ID (SUB)', 'USER ID', 'EMAIL', 'NAME', 'MARKET', 'ROLES', 'STATUS'],
              data.map((a) => [a.accountId, a.userId, a.email, a.name, a.market, a.roles, a.status]),
            ),
      );
    });

  return account;
}
