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
  // Readers (status, a dashboard) and a second opener may hold the database briefly;
  // wait rather than fail. First, since switching to WAL itself needs the lock.
  db.pragma("busy_timeout = 10000");
  db.pragma("journal_mode = WAL");
  db.pragma("foreign_keys = ON");
  db.pragma("synchronous = NORMAL");
  migrate(db, path, migrations);
  return db;
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
