// Makes a fresh clone runnable: npm dependencies and the Debian packages Gatehouse falls back on.
// Plain JavaScript with no dependencies, because it runs before `npm ci` has.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: root, ...options });
  if (result.status !== 0) {
    console.error(`\n${command} ${args.join(' ')} failed (exit ${result.status ?? result.signal}).`);
    process.exit(result.status ?? 1);
  }
}

const commandExists = (name) => spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;

export function ensureNodeModules() {
  if (existsSync(path.join(root, 'node_modules', '.package-lock.json'))) return;
  console.log('Installing dependencies (npm ci)…');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}

export function hasMongodBinary() {
  if (process.env.MONGOMS_SYSTEM_BINARY || commandExists('mongod')) return true;
  const cache = path.join(homedir(), '.cache', 'mongodb-binaries');
  return existsSync(cache) && readdirSync(cache).some((name) => name.startsWith('mongod'));
}

function standinReady() {
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  return spawnSync(python, ['-c', 'import mockupdb, mongomock'], { stdio: 'ignore' }).status === 0;
}

/** Installs Debian packages when we may (root with apt-get, as on the project's machines); otherwise says how. */
export function ensureDebianPackages(packages, why) {
  const canInstall = process.getuid?.() === 0 && commandExists('apt-get');
  if (!canInstall) {
    console.warn(`${why}: install ${packages.join(' ')} (e.g. sudo apt-get install ${packages.join(' ')}).`);
    return false;
  }
  console.log(`${why}: installing ${packages.join(', ')} with apt-get…`);
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return true;
}

/** Without MONGODB_URI or a mongod binary, Gatehouse runs on the stand-in, which needs two packages. */
export function ensureDatabaseFallback() {
  if (process.env.MONGODB_URI || hasMongodBinary() || standinReady()) return;
  ensureDebianPackages(['python3-mockupdb', 'python3-mongomock'], 'No mongod binary here, so Gatehouse will use its MongoDB stand-in');
}

export function ensureChromium() {
  if (existsSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium')) return;
  ensureDebianPackages(['chromium'], 'The browser tests drive Debian\'s Chromium');
}
