/**
 * The record of which process runs the embedded database of a data folder, and where it listens:
 * `<dataDir>/embedded-db.json`, owner-only. It is the data folder's lock: whoever creates it (created
 * atomically, only if absent) is the only process that may start an embedded database on that folder;
 * every other Gatehouse process (server or CLI) reads the port from it instead of trusting its own
 * GATEHOUSE_EMBEDDED_DB_PORT, so two databases never load, and then overwrite, the same files.
 *
 * The owner replaces or removes the record only while it still names the owner's instance; another
 * process removes it only when it is stale (see embedded.ts), and then only the exact text it judged.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const RECORD_FILE_NAME = 'embedded-db.json';

/** A server's database may be shared; a CLI command's is stopped when the command ends, so others wait for it. */
export type EmbeddedRole = 'server' | 'cli';

export interface EmbeddedRecord {
  /** The Gatehouse process that started (and will stop) the database. */
  pid: number;
  role: EmbeddedRole;
  /** `starting` until the database answers, `stopping` from the moment the owner begins to stop it. */
  state: 'starting' | 'ready' | 'stopping';
  port: number;
  /** Random per start; the database holds it too (see embedded.ts), so a port reused by another database is told apart. */
  instance: string;
  kind?: 'mongod' | 'standin';
  startedAt: string;
  /** Random per Gatehouse process: tells the owner from an earlier process that had the same id (see ownerAlive). */
  boot?: string;
}

/** This process's boot token (EmbeddedRecord.boot). */
export const PROCESS_BOOT = randomBytes(8).toString('hex');

/**
 * Whether the record's owner still runs. A record naming this very process id, but not this process's boot
 * token, was left by an earlier process that had the same id (a container restarted: its server is pid 1
 * each time), so its owner is gone, although process.kill(pid, 0) says otherwise.
 */
export function ownerAlive(record: EmbeddedRecord): boolean {
  if (record.pid === process.pid) return record.boot === PROCESS_BOOT;
  return processAlive(record.pid);
}

export interface ReadRecord {
  record: EmbeddedRecord;
  /** The file's exact text, for removing precisely this record and no newer one. */
  raw: string;
}

/** A refusal to start or join an embedded database, with a message meant for the operator. */
export class EmbeddedDatabaseError extends Error {
  override name = 'EmbeddedDatabaseError';
}

export function recordPath(dataDir: string): string {
  return path.join(dataDir, RECORD_FILE_NAME);
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException)?.code === code;
}

function parseRecord(raw: string): EmbeddedRecord | undefined {
  try {
    const value = JSON.parse(raw) as Partial<EmbeddedRecord>;
    const valid =
      Number.isInteger(value.pid) &&
      (value.pid as number) > 0 &&
      (value.role === 'server' || value.role === 'cli') &&
      (value.state === 'starting' || value.state === 'ready' || value.state === 'stopping') &&
      Number.isInteger(value.port) &&
      typeof value.instance === 'string';
    return valid ? (value as EmbeddedRecord) : undefined;
  } catch {
    return undefined;
  }
}

/** The current record, or undefined when there is none. A file that is not a record is refused, never guessed at. */
export function readRecord(file: string): ReadRecord | undefined {
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw new EmbeddedDatabaseError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const record = parseRecord(raw);
  if (!record) {
    throw new EmbeddedDatabaseError(
      `${file} is not a Gatehouse embedded-database record; if no Gatehouse process uses ${path.dirname(file)}, remove the file and try again`,
    );
  }
  return { record, raw };
}

/** Writes the text to a new owner-only file beside `file` and returns its name. */
function writeTemporary(file: string, text: string): string {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600, flag: 'wx' });
  return temporary;
}

function serialize(record: EmbeddedRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}

/**
 * Creates the record if there is none. A hard link is created only if the name is free and makes the
 * complete text appear at once, so no reader ever sees a half-written record. False: someone else holds it.
 */
export function claimRecord(file: string, record: EmbeddedRecord): boolean {
  const temporary = writeTemporary(file, serialize(record));
  try {
    linkSync(temporary, file);
    return true;
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return false;
    throw err;
  } finally {
    unlinkSync(temporary);
  }
}

function holdsInstance(file: string, instance: string): boolean {
  try {
    return parseRecord(readFileSync(file, 'utf8'))?.instance === instance;
  } catch {
    return false;
  }
}

/** The owner updates its record (state, kind); a record that is no longer its own is left alone. */
export function updateOwnRecord(file: string, record: EmbeddedRecord): void {
  if (!holdsInstance(file, record.instance)) return;
  const temporary = writeTemporary(file, serialize(record));
  try {
    renameSync(temporary, file);
  } catch (err) {
    unlinkSync(temporary);
    throw err;
  }
}

export function removeOwnRecord(file: string, instance: string): void {
  if (!holdsInstance(file, instance)) return;
  try {
    unlinkSync(file);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

/**
 * Removes a record judged stale, but only if the file still holds exactly the text that was judged: it
 * is moved aside first (atomic), compared, and put back if another process claimed the name meanwhile.
 */
export function removeStaleRecord(file: string, judgedRaw: string): void {
  const aside = `${file}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    renameSync(file, aside);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return; // another process removed it first
    throw err;
  }
  try {
    if (readFileSync(aside, 'utf8') === judgedRaw) return;
    try {
      linkSync(aside, file);
    } catch (err) {
      if (isErrno(err, 'EEXIST')) {
        throw new EmbeddedDatabaseError(`several Gatehouse processes started on ${path.dirname(file)} at once; try again`);
      }
      throw err;
    }
  } finally {
    unlinkSync(aside);
  }
}

/** Whether a process with this id exists (one owned by another user counts). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM');
  }
}
