/**
 * `npm run cli -- <command>`: the administrator CLI (see scripts/cli/program.ts, or `--help`).
 */
import { tameConsole } from './cli/output.js';

// Before the rest loads: some libraries print notices while their modules load.
tameConsole(process.env.LOG_LEVEL);
// `… | head` closing the pipe early is not an error worth a stack trace. Output is printed only
// after the database work is done and the database closed, so ending here loses nothing.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});
const { run } = await import('./cli/program.js');
process.exitCode = await run(process.argv.slice(2));
// Everything has been closed by now and the process ends by itself; should a stray handle keep it
// alive, do not leave an administrator's terminal (or a script) hanging.
setTimeout(() => process.exit(), 2000).unref();
