/** `audit list`: the audit log, newest first, with the same filters and cursor as the admin API. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { auditPage, type AuditFilters } from '../../src/admin/routes/audit.js';
import { z } from 'zod';
import { Printer, table, type CliIO } from './output.js';
import { cliEnvironment, withServices } from './session.js';

function instant(value: string): Date {
  const parsed = z.iso.datetime({ offset: true }).safeParse(value);
  if (!parsed.success) throw new InvalidArgumentError('Give an ISO 8601 date-time, e.g. 2025-01-31T12:00:00Z.');
  return new Date(value);
}

function limit(value: string): number {
  if (!/^\d{1,3}$/.test(value) || Number(value) < 1 || Number(value) > 200) throw new InvalidArgumentError('Give a whole number from 1 to 200.');
  return Number(value);
}

type ListOptions = AuditFilters & { limit?: number; cursor?: string; json?: boolean };

export function auditCommands(io: CliIO): Command {
  const audit = new Command('audit').description('read the audit log');

  audit
    .command('list')
    .description('list audit entries, newest first')
    .option('--actor <id>', 'actor as the ACTOR column shows it (e.g. system:cli:<user>, account:<id>), or its id alone')
    .option('--target <id>', 'target as the TARGET column shows it (e.g. account:<id>), or its id alone')
    .option('--type <type>', 'event type, or a prefix ending in * (e.g. "admin.account.*")')
    .addOption(new Option('--outcome <outcome>', 'success or failure').choices(['success', 'failure']))
    .option('--request-id <id>', 'request/correlation id')
    .option('--since <date-time>', 'from this instant (inclusive)', instant)
    .option('--until <date-time>', 'before this instant', instant)
    .option('--limit <n>', 'page size, 1-200 (default 50)', limit)
    .option('--cursor <cursor>', 'continue from a previous page')
    .option('--json', 'print the page as JSON: {"items": [...], "nextCursor": ...}')
    .action(async (opts: ListOptions) => {
      const { limit: pageSize, cursor, json: _json, ...filters } = opts;
      const { items, nextCursor } = await withServices(cliEnvironment(), (services) => auditPage(services.audit, filters, pageSize ?? 50, cursor));
      new Printer(io, opts.json === true).result({ items, nextCursor }, () => {
        if (items.length === 0) return 'No audit entries.\n';
        const who = (actor: unknown) => (actor ? `${(actor as { kind: string }).kind}:${(actor as { id?: string }).id ?? '-'}` : '-');
        const rows = items.map((e) => [e.at, e.type, e.outcome, who(e.actor), who(e.target), e.ip, e.requestId]);
        return table(['AT', 'TYPE', 'OUTCOME', 'ACTOR', 'TARGET', 'IP', 'REQUEST ID'], rows) + (nextCursor ? `More: --cursor ${nextCursor}\n` : '');
      });
    });

  return audit;
}
