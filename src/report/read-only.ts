import { existsSync } from "node:fs";
import { LedgerError } from "../errors.js";
import { beforeOpening, checkLedgerFile, missingLedger } from "../ledger/check.js";
import { openReadOnly } from "../ledger/db.js";
import { Ledger } from "../ledger/ledger.js";
import { MIGRATIONS } from "../ledger/migrations.js";

export interface ReadOnlyOptions {
  /**
   * When the ledger's schema is older than this program's, open it the writing way once
   * (which migrates it) instead of failing. For one-shot commands, never for a server.
   */
  upgrade?: boolean;
  /** Read every page first (SQLite's quick_check), for a server that would fail on each page. */
  verify?: boolean;
}

/**
 * Opens a task's ledger for reading only: no migration, no pragma that writes, no lock
 * held between statements. The orchestrator may be writing it at the same time (WAL),
 * so readers such as `report` and `serve` must not take the write path of `Ledger.open`.
 */
export function openLedgerReadOnly(root: string, options: ReadOnlyOptions = {}): Ledger {
  const path = Ledger.pathFor(root);
  const stranded = beforeOpening(path);
  if (stranded) throw stranded;
  if (!existsSync(path))
    throw (
      missingLedger(path) ??
      new LedgerError(`no ledger in ${root} (${path}); start a run with \`autoresearch run\``)
    );
  const db = openReadOnly(path);
  let version: number;
  try {
    version = checkLedgerFile(db, path, { known: MIGRATIONS.length, verify: options.verify });
  } catch (error) {
    db.close();
    throw error;
  }
  if (version === MIGRATIONS.length) return new Ledger(db);
  db.close();
  // An empty file (checked: no runs were lost from it) is a ledger not yet migrated.
  if (options.upgrade) return Ledger.open(root);
  if (version < 1) throw new LedgerError(`${path} is not an autoresearch ledger (no schema)`);
  throw new LedgerError(
    `the ledger ${path} has schema version ${version}, older than this autoresearch reads (${MIGRATIONS.length}); upgrade it once with \`autoresearch status -C ${root}\``,
  );
}
