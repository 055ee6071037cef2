import { existsSync } from "node:fs";
import Database from "better-sqlite3";
import { LedgerError } from "../errors.js";
import { checkLedgerFile } from "../ledger/db.js";
import { Ledger } from "../ledger/ledger.js";
import { MIGRATIONS } from "../ledger/migrations.js";

export interface ReadOnlyOptions {
  /**
   * When the ledger's schema is older than this program's, open it the writing way once
   * (which migrates it) instead of failing. For one-shot commands, never for a server.
   */
  upgrade?: boolean;
}

/**
 * Opens a task's ledger for reading only: no migration, no pragma that writes, no lock
 * held between statements. The orchestrator may be writing it at the same time (WAL),
 * so readers such as `report` and `serve` must not take the write path of `Ledger.open`.
 */
export function openLedgerReadOnly(root: string, options: ReadOnlyOptions = {}): Ledger {
  const path = Ledger.pathFor(root);
  if (!existsSync(path))
    throw new LedgerError(`no ledger in ${root} (${path}); start a run with \`autoresearch run\``);
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (error) {
    throw new LedgerError(`cannot open the ledger ${path}: ${(error as Error).message}`);
  }
  // A writer may hold the database for a moment; wait rather than fail.
  db.pragma("busy_timeout = 5000");
  let version: number;
  try {
    version = checkLedgerFile(db, path);
  } catch (error) {
    db.close();
    throw error;
  }
  if (version >= 1 && version >= MIGRATIONS.length) return new Ledger(db);
  db.close();
  if (version < 1) throw new LedgerError(`${path} is not an autoresearch ledger (no schema)`);
  if (options.upgrade) return Ledger.open(root);
  throw new LedgerError(
    `the ledger ${path} has schema version ${version}, older than this autoresearch reads (${MIGRATIONS.length}); upgrade it once with \`autoresearch status -C ${root}\``,
  );
}
