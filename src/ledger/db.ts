import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { LedgerError } from "../errors.js";
import { MIGRATIONS } from "./migrations.js";

export type Db = Database.Database;
export type Statement = Database.Statement;

/** Opens (creating if needed) a ledger database in WAL mode and brings its schema up to date. */
export function openDatabase(path: string, migrations: readonly string[] = MIGRATIONS): Db {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  let db: Db;
  try {
    db = new Database(path);
  } catch (error) {
    throw new LedgerError(`cannot open the ledger ${path}: ${(error as Error).message}`);
  }
  try {
    // Readers (status, a dashboard) and a second opener may hold the database briefly;
    // wait rather than fail. First, since switching to WAL itself needs the lock.
    db.pragma("busy_timeout = 10000");
    // Before the first write: switching to WAL would already change a file that is not ours.
    checkLedgerFile(db, path);
    db.pragma("journal_mode = WAL");
    db.pragma("foreign_keys = ON");
    db.pragma("synchronous = NORMAL");
    migrate(db, path, migrations);
    return db;
  } catch (error) {
    db.close();
    throw damagedLedger(error, path) ?? error;
  }
}

/**
 * The file's schema version, once it is known to be a ledger: SQLite can read it (reading
 * the schema finds a damaged file now rather than halfway through a command), and it is
 * not another program's database (tables, but no ledger schema version).
 */
export function checkLedgerFile(db: Db, path: string): number {
  try {
    const version = schemaVersion(db);
    const tables = db.prepare("SELECT count(*) FROM sqlite_master").pluck().get() as number;
    if (version === 0 && tables > 0)
      throw new LedgerError(unusable(path, "a database of some other program"));
    return version;
  } catch (error) {
    throw damagedLedger(error, path) ?? error;
  }
}

/**
 * SQLite's word that a ledger is damaged or not a database at all, as the error every
 * command gives (null for any other error). `path` is the file, when the caller knows it.
 */
export function damagedLedger(
  error: unknown,
  path = "the task's .autoresearch/ledger.db",
): LedgerError | null {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string" || !/^SQLITE_(NOTADB|CORRUPT)/.test(code)) return null;
  return new LedgerError(unusable(path, `${(error as Error).message}: damaged, or not a ledger`));
}

function unusable(path: string, why: string): string {
  return `${path} cannot be read as a ledger (${why}); autoresearch left it as it is: restore it from a backup, or move it aside to start a new ledger (the runs' commits stay in git under refs/autoresearch/)`;
}

export function schemaVersion(db: Db): number {
  return db.pragma("user_version", { simple: true }) as number;
}

function migrate(db: Db, path: string, migrations: readonly string[]): void {
  const current = schemaVersion(db);
  if (current > migrations.length)
    throw new LedgerError(
      `the ledger ${path} has schema version ${current}, newer than this autoresearch understands (${migrations.length}); upgrade autoresearch`,
    );
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
