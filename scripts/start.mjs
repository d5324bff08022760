#!/usr/bin/env node
// `npm start`: one command from a fresh clone to a running Gatehouse.
//  1. installs the npm dependencies if they are missing (npm ci);
//  2. without MONGODB_URI and without a mongod binary, makes sure the MongoDB stand-in's two Debian
//     packages are there (installing them when running as root, as on the project's machines);
//  3. development: runs the TypeScript sources directly; production: builds once, then runs dist/.
// Plain JavaScript with no dependencies, because it runs before `npm ci` has.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const production = process.env.NODE_ENV === 'production';

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: root, ...options });
  if (result.status !== 0) {
    console.error(`\n${command} ${args.join(' ')} failed (exit ${result.status ?? result.signal}).`);
    process.exit(result.status ?? 1);
  }
}

if (!existsSync(path.join(root, 'node_modules', '.package-lock.json'))) {
  console.log('Installing dependencies (npm ci)…');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}

function hasMongodBinary() {
  if (process.env.MONGOMS_SYSTEM_BINARY) return true;
  const onPath = spawnSync('sh', ['-c', 'command -v mongod'], { encoding: 'utf8' });
  if (onPath.status === 0) return true;
  const cache = path.join(homedir(), '.cache', 'mongodb-binaries');
  return existsSync(cache) && readdirSync(cache).some((name) => name.startsWith('mongod'));
}

function standinReady() {
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  return spawnSync(python, ['-c', 'import mockupdb, mongomock'], { stdio: 'ignore' }).status === 0;
}

if (!production && !process.env.MONGODB_URI && !hasMongodBinary() && !standinReady()) {
  const packages = ['python3-mockupdb', 'python3-mongomock'];
  const canInstall = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
  if (canInstall) {
    console.log(`No mongod here: installing the MongoDB stand-in's packages (${packages.join(', ')}) with apt-get…`);
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } else {
    console.warn(
      `No mongod binary was found. mongodb-memory-server will try to download one; if that is impossible, install\n` +
        `the stand-in's packages (sudo apt-get install ${packages.join(' ')}) or set MONGODB_URI.`,
    );
  }
}

let entry;
if (production) {
  if (!existsSync(path.join(root, 'dist', 'src', 'main.js'))) {
    console.log('Building (npm run build)…');
    run('npm', ['run', 'build']);
  }
  entry = ['dist/src/main.js'];
} else {
  entry = ['--import', 'tsx', 'src/main.ts'];
}

const child = spawn(process.execPath, entry, { stdio: 'inherit', cwd: root, env: process.env });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
