import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type Database from "better-sqlite3";
import { LedgerError } from "../errors.js";

type Db = Database.Database;

/** How a person starts a new ledger on purpose in a task whose earlier runs are there. */
const NEW_LEDGER = "`autoresearch run --new-ledger` (or `try --new-ledger`)";

export interface CheckOptions {
  /** How many schema versions this build knows: a file past them is refused. */
  known: number;
  /**
   * Also read every page and compare each index with its table (SQLite's integrity_check):
   * for a command about to write, so that damage in a table it has not read yet, or an
   * index that hides rows from its queries, is found before it records anything on top.
   */
  verify?: boolean;
  /**
   * `doctor`: an index that disagrees with its table is its to mend, not refused; it is
   * handed what the check found (null: the indexes agree), so as not to read it all again.
   */
  indexesMended?: (problem: string | null) => void;
  /**
   * The person asked for a new ledger (`--new-ledger`): an empty file where runs were
   * recorded is taken as a new ledger rather than refused.
   */
  newLedger?: boolean;
}

/**
 * The file's schema version, once it is known to be a ledger this build can use: SQLite can
 * read it (reading the schema finds a damaged file now rather than halfway through a
 * command), it is not another program's database (tables, but no ledger schema version),
 * not an empty file where runs were recorded, and not from a newer autoresearch.
 */
export function checkLedgerFile(db: Db, path: string, options: CheckOptions): number {
  try {
    const version = schemaVersion(db);
    const tables = db.prepare("SELECT count(*) FROM sqlite_master").pluck().get() as number;
    if (version === 0 && tables > 0)
      throw new LedgerError(unusable(path, "a database of some other program"));
    // An empty ledger is what a crash between creating and migrating the file leaves: a new
    // ledger, unless the task shows that one was recorded here and has been lost.
    const lost = version === 0 && !options.newLedger ? earlierRuns(path) : null;
    if (lost)
      throw new LedgerError(
        `${path} is empty, but this task has had runs (${lost}): its records were lost (a full disk, a crash, a copy cut short); restore it from a backup, or start a new ledger in its place with ${NEW_LEDGER} (the runs' commits stay in git under refs/autoresearch/)`,
      );
    if (version > options.known) throw newerLedger(path, version, options.known);
    const problem = options.verify ? integrityProblem(db) : null;
    // Pages read well, but an index lacks rows or has others: the tables hold the records,
    // and rebuilding the indexes from them mends it.
    const index = problem !== null && /\bindex \S+$/.test(problem);
    if (index && !options.indexesMended)
      throw new LedgerError(
        `${path}: an index disagrees with its table (${problem}), so queries would miss records; autoresearch left it as it is: \`autoresearch doctor --fix\` rebuilds the indexes from the tables, which hold the records`,
      );
    if (problem !== null && !index) throw new LedgerError(unusable(path, `${problem}: damaged`));
    if (options.verify) options.indexesMended?.(problem);
    return version;
  } catch (error) {
    throw ledgerRefusal(error, path) ?? error;
  }
}

/**
 * The refusal for a task whose ledger at `path` is not there although runs were recorded in
 * it (their folders or trial refs are): taken as a new ledger, the old runs would be orphaned
 * and their tags reused. Null in a task that has never run, whose first run makes the ledger.
 */
export function missingLedger(path: string): LedgerError | null {
  const lost = earlierRuns(path);
  if (!lost) return null;
  return new LedgerError(
    `the ledger ${path} is missing, but this task has had runs (${lost}); put the ledger back at ${path} (with its -wal and -shm files, if it had them), or, to start a new ledger beside the old runs on purpose, use ${NEW_LEDGER} (the old runs' folders and git refs stay, unrecorded)`,
  );
}

/**
 * What is refused before SQLite opens the ledger at all (null when nothing is): a folder in
 * its place (SQLite says only "disk I/O error"), and a `-wal` with records beside a ledger
 * that is missing or empty: it may hold all the ledger's records (a ledger moved away
 * without it, or cut short), and SQLite deletes a `-wal` it finds beside a new or empty
 * file on opening.
 */
export function beforeOpening(path: string): LedgerError | null {
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory())
    return new LedgerError(
      `the ledger ${path} is a folder, not a file: move it aside, then try again`,
    );
  const size = (file: string) => statSync(file, { throwIfNoEntry: false })?.size ?? 0;
  if (size(`${path}-wal`) === 0 || size(path) > 0) return null;
  const ledger = existsSync(path) ? "is empty" : "is missing";
  return new LedgerError(
    `the ledger ${path} ${ledger}, but its ${path}-wal holds ${size(`${path}-wal`)} bytes of records; autoresearch opened neither, since SQLite would delete that -wal: put the ledger back beside it, or move the -wal and -shm aside with the ledger, then try again`,
  );
}

export function newerLedger(path: string, version: number, known: number): LedgerError {
  return new LedgerError(
    `the ledger ${path} has schema version ${version}, newer than this autoresearch understands (${known}); upgrade autoresearch`,
  );
}

/**
 * SQLite's word that a ledger is damaged or not a database, or that its file or folder
 * cannot be written, as the one line every command gives (null for any other error).
 * `path` is the file, when the caller knows it.
 */
export function ledgerRefusal(
  error: unknown,
  path = "the task's .autoresearch/ledger.db",
): LedgerError | null {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return null;
  const message = (error as Error).message;
  if (/^SQLITE_(NOTADB|CORRUPT)/.test(code))
    return new LedgerError(unusable(path, `${message}: damaged, or not a ledger`));
  // CANTOPEN on a file that is there: SQLite could not create the -wal or -shm beside it.
  if (/^SQLITE_(READONLY|CANTOPEN|PERM)/.test(code)) return notWritable(path, message);
  return null;
}

export function notWritable(path: string, why: string): LedgerError {
  return new LedgerError(
    `${path} is not writable (${why}): autoresearch records in it, and SQLite keeps its -wal and -shm files beside it, even to read it; make the file and its folder writable for this user (chmod u+w; \`lsattr\` shows a file marked immutable, which \`chattr -i\` clears), or run as the user who owns them`,
  );
}

/** The first problem SQLite's integrity_check finds, on one line; null when none. */
export function integrityProblem(db: Db): string | null {
  const found = String(db.pragma("integrity_check(1)", { simple: true }));
  // "*** in database main ***\nTree 2 page 2: ..." on the one line, without its header.
  return found === "ok" ? null : found.replace(/^\*\*\*.*\*\*\*\n/, "").replaceAll("\n", "; ");
}

function unusable(path: string, why: string): string {
  // Its -wal goes with it: SQLite deletes a -wal it finds beside a new, empty file.
  return `${path} cannot be read as a ledger (${why}); autoresearch left it as it is: restore it from a backup, or move it aside with its -wal and -shm files and start a new ledger with ${NEW_LEDGER} (the runs' commits stay in git under refs/autoresearch/)`;
}

export function schemaVersion(db: Db): number {
  return db.pragma("user_version", { simple: true }) as number;
}

/**
 * What shows that runs were recorded in the ledger at `path` (a task's
 * .autoresearch/ledger.db): their folders under .autoresearch/runs/, or their trial refs in
 * the task's git repository. Null when there is none. A branch `autoresearch/<tag>` alone
 * shows none: a person may make one, and a run may start on it.
 */
export function earlierRuns(path: string): string | null {
  const runs = join(dirname(path), "runs");
  const folders = existsSync(runs) ? readdirSync(runs) : [];
  if (folders.length)
    return `${runs} holds ${folders.slice(0, 3).join(", ")}${folders.length > 3 ? ", ..." : ""}`;
  // `import` takes any folder: only the task's own repository, not one it lies in, counts.
  const root = dirname(dirname(path));
  if (!existsSync(join(root, ".git"))) return null;
  let refs = "";
  try {
    refs = execFileSync(
      "git",
      ["for-each-ref", "--count=3", "--format=%(refname)", "refs/autoresearch/"],
      { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
    ).trim();
  } catch {
    // A repository git cannot read says nothing either way.
  }
  return refs ? `git has ${refs.split("\n").join(", ")}` : null;
}
