#!/usr/bin/env node
// `npm start`: one command from a fresh clone to a running Gatehouse. Installs what is missing
// (scripts/setup.mjs), then runs the TypeScript sources in development, or a build of them in production.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { ensureDatabaseFallback, ensureNodeModules, root, run } from './setup.mjs';

const production = process.env.NODE_ENV === 'production';
ensureNodeModules();
if (!production) ensureDatabaseFallback();

let entry = ['--import', 'tsx', 'src/main.ts'];
if (production) {
  if (!existsSync(path.join(root, 'dist', 'src', 'main.js'))) {
    console.log('Building (npm run build)…');
    run('npm', ['run', 'build']);
  }
  entry = ['dist/src/main.js'];
}

// argon2 hashes on libuv's thread pool (default 4 threads): give it at least one per core.
const threads = String(Math.max(4, availableParallelism()));
const child = spawn(process.execPath, entry, { stdio: 'inherit', cwd: root, env: { UV_THREADPOOL_SIZE: threads, ...process.env } });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
