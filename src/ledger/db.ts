import { accessSync, constants, existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { LedgerError } from "../errors.js";
import {
  beforeOpening,
  checkLedgerFile,
  ledgerRefusal,
  missingLedger,
  newerLedger,
  notWritable,
  schemaVersion,
} from "./check.js";
import { MIGRATIONS } from "./migrations.js";

export type Db = Database.Database;
export type Statement = Database.Statement;

export interface OpenOptions {
  /** Read every page before anything is written: for a command's first open, not every open. */
  verify?: boolean;
  /**
   * Make a new ledger where the task's earlier runs' one is missing or empty (`--new-ledger`),
   * rather than refuse; a ledger that holds records is refused with it.
   */
  newLedger?: boolean;
  /**
   * With `verify`: take a ledger whose indexes disagree with their tables (doctor mends
   * it), and hand over what the check found.
   */
  indexesMended?: (problem: string | null) => void;
}

/** Opens (creating if needed) a ledger database in WAL mode and brings its schema up to date. */
export function openDatabase(
  path: string,
  migrations: readonly string[] = MIGRATIONS,
  options: OpenOptions = {},
): Db {
  if (path !== ":memory:") {
    const stranded = beforeOpening(path);
    if (stranded) throw stranded;
    mkdirSync(dirname(path), { recursive: true });
    // Checked on a connection that cannot write: one that can, closed after finding damage,
    // would checkpoint the -wal into the file it is about to refuse, changing both.
    if (existsSync(path)) {
      const reader = openReadOnly(path);
      let holdsRuns = false;
      try {
        const version = checkLedgerFile(reader, path, {
          known: migrations.length,
          verify: options.verify,
          newLedger: options.newLedger,
          indexesMended: options.indexesMended,
        });
        // One made by an earlier --new-ledger that was refused later (a tag taken, say)
        // holds nothing yet, and is taken as it is.
        holdsRuns = version > 0 && hasRuns(reader);
      } finally {
        reader.close();
      }
      if (options.newLedger && holdsRuns)
        throw new LedgerError(
          `--new-ledger: ${path} is a ledger already; leave out --new-ledger to record in it, or move it aside with its -wal and -shm files first`,
        );
      // SQLite opens a file it may not write for reading, without a word, and in WAL mode
      // even BEGIN IMMEDIATE passes: said now, not at the first record, after work is done.
      if (!writable(path)) throw notWritable(path, "the file is read-only");
    } else if (!options.newLedger) {
      // Made anew here, it would orphan the runs recorded in the one that is gone.
      const missing = missingLedger(path);
      if (missing) throw missing;
    }
  }
  let db: Db;
  try {
    db = new Database(path);
  } catch (error) {
    throw ledgerRefusal(error, path) ?? cannotOpen(path, error);
  }
  try {
    // Readers (status, a dashboard) and a second opener may hold the database briefly;
    // wait rather than fail. First, since switching to WAL itself needs the lock.
    db.pragma("busy_timeout = 10000");
    db.pragma("journal_mode = WAL");
    db.pragma("foreign_keys = ON");
    db.pragma("synchronous = NORMAL");
    migrate(db, path, migrations);
    return db;
  } catch (error) {
    db.close();
    throw ledgerRefusal(error, path) ?? error;
  }
}

/**
 * A connection that never writes the ledger: no migration, no pragma that writes, and no
 * checkpoint when it closes. The file's checks are the caller's (`checkLedgerFile`).
 */
export function openReadOnly(path: string): Db {
  let db: Db;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (error) {
    throw ledgerRefusal(error, path) ?? cannotOpen(path, error);
  }
  // A writer may hold the database for a moment (switching to WAL, recovering it); wait.
  db.pragma("busy_timeout = 10000");
  return db;
}

/** Whether this process may write `path` (what open() would say: root may, unless immutable). */
function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function cannotOpen(path: string, error: unknown): LedgerError {
  return new LedgerError(`cannot open the ledger ${path}: ${(error as Error).message}`);
}

function migrate(db: Db, path: string, migrations: readonly string[]): void {
  const current = schemaVersion(db);
  // Checked before opening too; again here for a file that another process created since.
  if (current > migrations.length) throw newerLedger(path, current, migrations.length);
  // Another process may be migrating the same file: each step re-reads the version inside
  // its write transaction, so a step is applied exactly once.
  const step = db.transaction(() => {
    const version = schemaVersion(db);
    if (version >= migrations.length) return false;
    db.exec(migrations[version]!);
    db.pragma(`user_version = ${version + 1}`);
    return true;
  });
  while (step.immediate());
}

/** Whether a ledger records any run (a migrated ledger has the table). */
function hasRuns(db: Db): boolean {
  return db.prepare("SELECT 1 FROM runs LIMIT 1").get() !== undefined;
}
