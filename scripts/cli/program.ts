/**
 * The administrator CLI's commands and its error handling: every failure ends as one `error: …` line
 * on stderr and exit code 1; successful commands exit 0.
 */
import { Command, CommanderError } from 'commander';
import { accountCommands } from './account-commands.js';
import { addPasskeyCommands } from './passkey-commands.js';
import { addAccountAdminCommands } from './account-admin-commands.js';
import { auditCommands } from './audit-commands.js';
import { addClientAdminCommands, registrationTokenCommands } from './client-admin-commands.js';
import { clientCommands } from './client-commands.js';
import { describeError, isUserError, processIO, type CliIO } from './output.js';
import { cliLogger } from './session.js';

export function buildProgram(io: CliIO): Command {
  const program = new Command('npm run cli --')
    .description('Gatehouse administration: clients, accounts, registration tokens and the audit log, straight on the database (MONGODB_URI, or the embedded one)')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => void io.stdout.write(text),
      writeErr: (text) => void io.stderr.write(text),
    });
  const client = clientCommands(io);
  addClientAdminCommands(client, io);
  const account = accountCommands(io);
  addAccountAdminCommands(account, io);
  addPasskeyCommands(account, io);
  program.addCommand(client);
  program.addCommand(account);
  program.addCommand(registrationTokenCommands(io));
  program.addCommand(auditCommands(io));
  // Subcommands inherit these settings only when created through .command(); set them on every level.
  const configure = (command: Command): void => {
    command.exitOverride().configureOutput(program.configureOutput()).showSuggestionAfterError(true);
    command.commands.forEach(configure);
  };
  program.commands.forEach(configure);
  return program;
}

/** Runs the CLI on `argv` (without node and the script); resolves to the exit code. */
export async function run(argv: string[], io: CliIO = processIO): Promise<number> {
  try {
    await buildProgram(io).parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    // Commander has already printed its own message (or the help) for these.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 1;
    if (!isUserError(err)) cliLogger()?.debug({ err }, 'command failed');
    const hint = isUserError(err) ? '' : ' (set LOG_LEVEL=debug for details)';
    io.stderr.write(`error: ${describeError(err)}${hint}\n`);
    return 1;
  }
}
