import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { type Db, openDatabase } from "../../src/ledger/db.js";
import { Ledger } from "../../src/ledger/ledger.js";
import { MIGRATIONS } from "../../src/ledger/migrations.js";
import { processStartTime } from "../../src/util/proc.js";
import { quadraticTask, runCli, sh, tempDir } from "../helpers.js";
import { LEDGER_COMMANDS, resultsTsv } from "./commands.js";

type Seen = [string, number | null, string][];

/** The one line every command gives, naming the file (or, found later, the task's one). */
const SAID =
  /^autoresearch: (\/\S+\/\.autoresearch\/ledger\.db|the task's \.autoresearch\/ledger\.db) cannot be read as a ledger \(.+\); autoresearch left it as it is: restore it from a backup, or move it aside with its -wal and -shm files and start a new ledger with `autoresearch run --new-ledger` \(or `try --new-ledger`\) \(the runs' commits stay in git under refs\/autoresearch\/\)\n$/;

const expectSaid = (seen: Seen, said: RegExp = SAID) => {
  for (const [command, code, stderr] of seen) {
    expect(stderr, command).toMatch(said);
    expect(code, command).toBe(5);
  }
};

/** A task whose .autoresearch/ holds what `write` put there. */
function taskWith(write: (path: string) => void): { root: string; path: string } {
  const root = quadraticTask();
  const path = join(root, ".autoresearch", "ledger.db");
  mkdirSync(join(root, ".autoresearch"));
  write(path);
  return { root, path };
}

/** What each of `commands` says in the task `root`. */
async function say(root: string, commands: string[][], after?: (command: string) => void) {
  const seen: Seen = [];
  for (const args of commands) {
    // try needs an edit to try; the others a clean working tree.
    if (args[0] === "try") sh(root, "sed -i 's/^const X = .*;/const X = 2;/' train.mjs");
    const result = await runCli([...args, "-C", root], { timeoutMs: 30_000 });
    sh(root, "git checkout -q -- train.mjs");
    seen.push([args[0]!, result.code, result.stderr]);
    after?.(args[0]!);
  }
  return seen;
}

/**
 * What each command says of the ledger `write` left, which it must leave as it was, its
 * -wal included. (A reader leaves an empty -wal where there was none, as SQLite does.)
 */
async function refusals(write: (path: string) => void, commands: (tsv: string) => string[][]) {
  const { root, path } = taskWith(write);
  const wal = () => (existsSync(`${path}-wal`) ? readFileSync(`${path}-wal`) : Buffer.alloc(0));
  const before = { ledger: readFileSync(path), wal: wal() };
  const seen = await say(root, commands(resultsTsv(tempDir())), (command) => {
    expect(readFileSync(path).equals(before.ledger), command).toBe(true);
    expect(wal().equals(before.wal), command).toBe(true);
  });
  return { seen, path, root };
}

const RUN = {
  tag: "a",
  taskName: "quadratic",
  taskJson: "{}",
  metric: "score",
  goal: "minimize" as const,
  baseCommit: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
  branch: "autoresearch/a",
  researcher: "mutate",
  judge: "greedy",
  seed: 1,
  maxTrials: 10,
};

/** The first page of `table`, and the page size, of an open ledger. */
function pageOf(db: Db, table: string): { page: number; size: number } {
  const page = db
    .prepare("SELECT rootpage FROM sqlite_master WHERE name = ?")
    .pluck()
    .get(table) as number;
  return { page, size: db.pragma("page_size", { simple: true }) as number };
}

/** Overwrites one page of the file at `path`, as a bad disk block would. */
function overwrite(path: string, { page, size }: { page: number; size: number }): void {
  const bytes = readFileSync(path);
  bytes.fill(0x55, (page - 1) * size, page * size);
  writeFileSync(path, bytes);
}

/** A real ledger at `path` with run "a", whose `table` then has its first page overwritten. */
function damagedIn(table: string) {
  return (path: string) => {
    const db = openDatabase(path);
    new Ledger(db).createRun(RUN);
    const at = pageOf(db, table);
    db.close();
    overwrite(path, at);
  };
}

describe("a ledger that cannot be read", () => {
  it("random bytes: every command that opens the ledger says so in one line and leaves it be", async () => {
    const { seen, path } = await refusals(
      (p) => writeFileSync(p, randomBytes(8192)),
      LEDGER_COMMANDS,
    );
    expectSaid(seen);
    expect(seen[0]![2]).toBe(
      `autoresearch: ${path} cannot be read as a ledger (file is not a database: damaged, or not a ledger); autoresearch left it as it is: restore it from a backup, or move it aside with its -wal and -shm files and start a new ledger with \`autoresearch run --new-ledger\` (or \`try --new-ledger\`) (the runs' commits stay in git under refs/autoresearch/)\n`,
    );
  });

  it("text in its place", async () => {
    const { seen } = await refusals(
      (p) => writeFileSync(p, "my notes\n".repeat(100)),
      () => [["status"], ["report"]],
    );
    expectSaid(seen);
  });

  it("another program's database in its place is neither read nor migrated", async () => {
    const { seen, path } = await refusals(
      (p) => {
        const db = new Database(p);
        db.exec("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine')");
        db.close();
      },
      // The commands that would write to it, and one that only reads.
      (tsv) => [["status"], ["run", "-n", "1"], ["import", tsv, "--tag", "i"], ["report"]],
    );
    expectSaid(seen);
    expect(seen[0]![2]).toContain(
      `${path} cannot be read as a ledger (a database of some other program)`,
    );
  });

  it("a ledger damaged inside a table, found only when the table is read", async () => {
    const { seen } = await refusals(damagedIn("runs"), () => [["status"], ["report"], ["doctor"]]);
    expectSaid(seen);
    // status and report find it after opening: said where every command's errors end up,
    // without the path. doctor reads every page first, as every command that writes.
    expect(seen.map(([command, , stderr]) => [command, stderr.split(" cannot")[0]])).toEqual([
      ["status", "autoresearch: the task's .autoresearch/ledger.db"],
      ["report", "autoresearch: the task's .autoresearch/ledger.db"],
      ["doctor", expect.stringMatching(/^autoresearch: \/\S+\/ledger\.db$/)],
    ]);
  });

  it("damage in a table a command would not read before writing: refused before it records anything", async () => {
    // No command reads the promotions of a run without any until it promotes: without the
    // check at opening, `run` would record a whole run into this file.
    const { seen, path } = await refusals(damagedIn("promotions"), (tsv) => [
      ["run", "-n", "1", "--tag", "b"],
      ["resume", "--tag", "a"],
      ["try", "-m", "X 2", "--tag", "c"],
      ["import", tsv, "--tag", "i"],
      ["delete", "--tag", "a", "--yes"],
      ["doctor"],
      ["serve", "--port", "0"],
    ]);
    expectSaid(seen);
    for (const [command, , stderr] of seen)
      expect(stderr, command).toContain(`${path} cannot be read as a ledger (Tree `);
  });

  it("with a -wal beside it: no command checkpoints the -wal into the file it refuses", async () => {
    // A run recorded in the file, and a later write still in the -wal only, as an
    // orchestrator killed mid-run leaves them; then the runs table's page goes bad.
    const { seen } = await refusals((path) => {
      const scratch = join(tempDir(), "ledger.db");
      const db = openDatabase(scratch);
      const ledger = new Ledger(db);
      const run = ledger.createRun(RUN);
      db.pragma("wal_checkpoint(TRUNCATE)");
      db.pragma("wal_autocheckpoint = 0");
      ledger.event(run.id, null, "note", { in: "the wal" });
      copyFileSync(scratch, path);
      copyFileSync(`${scratch}-wal`, `${path}-wal`);
      const at = pageOf(db, "runs");
      db.close();
      overwrite(path, at);
      expect(statSync(`${path}-wal`).size).toBeGreaterThan(0);
    }, LEDGER_COMMANDS);
    expectSaid(seen);
  });
});

describe("an empty ledger", () => {
  const EMPTY =
    /^autoresearch: \/\S+\/ledger\.db is empty, but this task has had runs \(([^)]+)\): its records were lost \(a full disk, a crash, a copy cut short\); restore it from a backup, or start a new ledger in its place with `autoresearch run --new-ledger` \(or `try --new-ledger`\) \(the runs' commits stay in git under refs\/autoresearch\/\)\n$/;

  it("where the task has run folders is refused by every command, and left empty", async () => {
    const { seen, root } = await refusals((path) => {
      writeFileSync(path, "");
      mkdirSync(join(path, "..", "runs", "a", "trials", "0"), { recursive: true });
    }, LEDGER_COMMANDS);
    expectSaid(seen, EMPTY);
    expect(seen[0]![2]).toContain(`(${join(root, ".autoresearch", "runs")} holds a)`);
  });

  it("where the task has only the runs' trial refs in git is refused too", async () => {
    const { seen } = await refusals(
      (path) => {
        writeFileSync(path, "");
        sh(join(path, "..", ".."), "git update-ref refs/autoresearch/a/trials/1 HEAD");
      },
      () => [["status"], ["run", "-n", "1"]],
    );
    expectSaid(seen, EMPTY);
    expect(seen[0]![2]).toContain("(git has refs/autoresearch/a/trials/1)");
  });

  it("in a task without runs is a new ledger: what a crash before the first migration leaves", async () => {
    const { root, path } = taskWith((p) => writeFileSync(p, ""));
    const seen = await say(root, [["status"], ["run", "-n", "1"]]);
    expect(seen.map(([command, code]) => [command, code])).toEqual([
      ["status", 0],
      ["run", 0],
    ]);
    expect(statSync(path).size).toBeGreaterThan(0);
  });
});

describe("a missing ledger", () => {
  const MISSING =
    /^autoresearch: the ledger (\/\S+\/\.autoresearch\/ledger\.db) is missing, but this task has had runs \(([^)]+)\); put the ledger back at \1 \(with its -wal and -shm files, if it had them\), or, to start a new ledger beside the old runs on purpose, use `autoresearch run --new-ledger` \(or `try --new-ledger`\) \(the old runs' folders and git refs stay, unrecorded\)\n$/;

  it("in a task that has had runs is refused by every command, which makes no new ledger", async () => {
    const root = quadraticTask();
    const path = join(root, ".autoresearch", "ledger.db");
    expect((await runCli(["run", "-n", "1", "--tag", "a", "-C", root])).code).toBe(0);
    // Moved away, as a person cleaning up might: the run's folder and branch are still there.
    for (const file of [path, `${path}-wal`, `${path}-shm`])
      if (existsSync(file)) renameSync(file, `${file}.away`);
    const seen = await say(root, LEDGER_COMMANDS(resultsTsv(tempDir())), (command) =>
      expect(existsSync(path), command).toBe(false),
    );
    expectSaid(seen, MISSING);
    expect(seen[0]![2]).toContain(`(${join(root, ".autoresearch", "runs")} holds a)`);
  });

  it("in a task with only the runs' trial refs in git is refused too, not with only a branch", async () => {
    const root = quadraticTask();
    // A branch of that name alone shows no run: a person may make one, and a run start on it.
    sh(root, "git branch autoresearch/a");
    expect((await runCli(["status", "-C", root])).stdout).toMatch(/^no runs yet/);
    sh(root, "git update-ref refs/autoresearch/a/trials/1 HEAD");
    const seen = await say(root, [["status"], ["report"], ["run", "-n", "1"]]);
    expectSaid(seen, MISSING);
    expect(seen[0]![2]).toContain("(git has refs/autoresearch/a/trials/1)");
  });

  it("--new-ledger starts one beside the old runs; with a ledger there it is refused", async () => {
    const root = quadraticTask();
    const path = join(root, ".autoresearch", "ledger.db");
    mkdirSync(join(root, ".autoresearch", "runs", "a"), { recursive: true });
    writeFileSync(join(root, ".autoresearch", "runs", "a", "results.tsv"), "old\n");
    // The old run's tag: its folder would be written over, so it is refused.
    const taken = await runCli(["run", "-n", "1", "--tag", "a", "--new-ledger", "-C", root]);
    expect(taken.code).toBe(2);
    expect(taken.stderr).toBe(
      `autoresearch: --tag: an earlier run "a" that this ledger does not record is still in the task (${join(root, ".autoresearch", "runs", "a")} holds its records); choose another tag\n`,
    );
    expect(readFileSync(join(root, ".autoresearch", "runs", "a", "results.tsv"), "utf8")).toBe(
      "old\n",
    );
    // Refused before the new ledger was made: nothing is left that would pass for one.
    expect(existsSync(path)).toBe(false);
    // An earlier run's trial refs alone (its folder moved aside): moved, git would lose them.
    const old = sh(root, "git rev-parse HEAD");
    sh(root, `git update-ref refs/autoresearch/z/trials/1 ${old}`);
    const refs = await runCli(["run", "-n", "1", "--tag", "z", "--new-ledger", "-C", root]);
    expect(refs.code).toBe(2);
    expect(refs.stderr).toBe(
      `autoresearch: --tag: an earlier run "z" that this ledger does not record is still in the task (git holds its trials' commits under refs/autoresearch/z/); choose another tag\n`,
    );
    expect(sh(root, "git rev-parse refs/autoresearch/z/trials/1")).toBe(old);
    const [run] = await say(root, [["run", "-n", "1", "--tag", "b", "--new-ledger"]]);
    expect(run!.slice(0, 2)).toEqual(["run", 0]);
    const status = await runCli(["status", "-C", root]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^run b: /m);
    const again = await runCli(["run", "-n", "1", "--tag", "c", "--new-ledger", "-C", root]);
    expect(again.code).toBe(5);
    expect(again.stderr).toBe(
      `autoresearch: --new-ledger: ${path} is a ledger already; leave out --new-ledger to record in it, or move it aside with its -wal and -shm files first\n`,
    );
  });

  it("a -wal left without its ledger is refused by every command, which leaves it as it is", async () => {
    const root = quadraticTask();
    const path = join(root, ".autoresearch", "ledger.db");
    expect((await runCli(["run", "-n", "1", "--tag", "a", "-C", root])).code).toBe(0);
    // The ledger moved away without its -wal, which still held records: SQLite would
    // delete that -wal on making a new ledger, or on opening an empty one.
    renameSync(path, `${path}.away`);
    writeFileSync(`${path}-wal`, randomBytes(4096));
    const wal = readFileSync(`${path}-wal`);
    for (const args of [["status"], ["report"], ["run", "-n", "1", "--tag", "b", "--new-ledger"]]) {
      const seen = await runCli([...args, "-C", root]);
      expect(seen.code, args.join(" ")).toBe(5);
      expect(seen.stderr).toBe(
        `autoresearch: the ledger ${path} is missing, but its ${path}-wal holds 4096 bytes of records; autoresearch opened neither, since SQLite would delete that -wal: put the ledger back beside it, or move the -wal and -shm aside with the ledger, then try again\n`,
      );
      expect(readFileSync(`${path}-wal`).equals(wal)).toBe(true);
      expect(existsSync(path)).toBe(false);
    }
  });

  it("a folder in the ledger's place is named as such, not as a disk I/O error", async () => {
    const { root, path } = taskWith((p) => mkdirSync(p));
    for (const args of [["status"], ["run", "-n", "1"]]) {
      const seen = await runCli([...args, "-C", root]);
      expect(seen.code, args.join(" ")).toBe(5);
      expect(seen.stderr).toBe(
        `autoresearch: the ledger ${path} is a folder, not a file: move it aside, then try again\n`,
      );
    }
  });

  it("status on a ledger that records none of the task's earlier runs says so", async () => {
    const { root, path } = taskWith((p) => {
      openDatabase(p).close();
      mkdirSync(join(p, "..", "runs", "a"), { recursive: true });
    });
    const status = await runCli(["status", "-C", root]);
    expect(status.code).toBe(0);
    expect(status.stdout).toBe(
      `no runs recorded in ${path}; the task's earlier runs are not in it (${join(root, ".autoresearch", "runs")} holds a); start one with \`autoresearch run\`\n`,
    );
  });

  it("--new-ledger takes an empty one where runs were recorded as a new ledger", async () => {
    const { root, path } = taskWith((p) => {
      writeFileSync(p, "");
      mkdirSync(join(p, "..", "runs", "a"), { recursive: true });
    });
    const [run] = await say(root, [["run", "-n", "1", "--tag", "b", "--new-ledger"]]);
    expect(run!.slice(0, 2)).toEqual(["run", 0]);
    expect(statSync(path).size).toBeGreaterThan(0);
  });
});

describe("a ledger from a newer autoresearch", () => {
  it("is refused by every command that opens it, which says to upgrade", async () => {
    const { seen, path } = await refusals((p) => {
      openDatabase(p).close();
      const db = new Database(p);
      db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
      db.close();
    }, LEDGER_COMMANDS);
    const said = `autoresearch: the ledger ${path} has schema version ${MIGRATIONS.length + 1}, newer than this autoresearch understands (${MIGRATIONS.length}); upgrade autoresearch\n`;
    expect(seen).toEqual(LEDGER_COMMANDS("").map(([command]) => [command, 5, said]));
  });
});

/**
 * Makes `path` (a file or a folder) read-only for this process until the returned undo:
 * root writes whatever its mode, so root makes it immutable. Null where that cannot be done.
 */
function readOnly(path: string): (() => void) | null {
  if (process.getuid?.() !== 0) {
    const mode = statSync(path).mode;
    chmodSync(path, mode & ~0o222);
    return () => chmodSync(path, mode);
  }
  try {
    execFileSync("chattr", ["+i", path], { stdio: "ignore" });
  } catch {
    return null; // a file system without the attribute (tmpfs)
  }
  return () => execFileSync("chattr", ["-i", path]);
}

describe("a ledger this user may not write", () => {
  const notWritable = (path: string, why: string) =>
    `autoresearch: ${path} is not writable (${why}): autoresearch records in it, and SQLite keeps its -wal and -shm files beside it, even to read it; make the file and its folder writable for this user (chmod u+w; \`lsattr\` shows a file marked immutable, which \`chattr -i\` clears), or run as the user who owns them\n`;

  /** A task with one imported run, "imported". */
  async function imported(): Promise<{ root: string; path: string }> {
    const root = quadraticTask();
    const done = await runCli(["import", resultsTsv(tempDir()), "--tag", "imported", "-C", root]);
    expect(done.code).toBe(0);
    return { root, path: join(root, ".autoresearch", "ledger.db") };
  }

  it("a read-only file: commands that write say so in one line; status and report still read it", async (ctx) => {
    const { root, path } = await imported();
    const undo = readOnly(path);
    if (!undo) return ctx.skip();
    try {
      const seen = await say(root, [
        ["status"],
        ["report"],
        ["run", "-n", "1"],
        ["resume"],
        ["try", "-m", "X 2"],
        ["import", resultsTsv(tempDir()), "--tag", "more"],
        ["delete", "--tag", "imported", "--yes"],
        ["doctor"],
      ]);
      expect(seen.slice(0, 2).map(([command, code, stderr]) => [command, code, stderr])).toEqual([
        ["status", 0, ""],
        ["report", 0, ""],
      ]);
      const said = notWritable(path, "the file is read-only");
      expect(seen.slice(2)).toEqual(seen.slice(2).map(([command]) => [command, 5, said]));
    } finally {
      undo();
    }
  });

  it("a read-only folder: SQLite cannot make its -wal and -shm there, so every command says so", async (ctx) => {
    const { root, path } = await imported();
    const undo = readOnly(join(root, ".autoresearch"));
    if (!undo) return ctx.skip();
    try {
      const seen = await say(root, [
        ["status"],
        ["report"],
        ["import", resultsTsv(tempDir()), "--tag", "more"],
      ]);
      // SQLite's own words differ: a folder root may not write (immutable) cannot be opened,
      // one another user may not is a read-only database.
      const why = (stderr: string) => stderr.replace(/not writable \([^)]+\)/, "not writable (…)");
      const said = notWritable(path, "…");
      expect(seen.map(([command, code, stderr]) => [command, code, why(stderr)])).toEqual(
        seen.map(([command]) => [command, 5, said]),
      );
    } finally {
      undo();
    }
  });
});

describe("a ledger whose index disagrees with its table", () => {
  it("doctor names it, and --fix rebuilds the indexes from the tables", async () => {
    const root = quadraticTask();
    expect((await runCli(["run", "-C", root, "--tag", "a", "--max-trials", "3"])).code).toBe(0);
    const path = join(root, ".autoresearch", "ledger.db");
    // The index of trials by run rebuilt as if it were on other columns, its definition
    // then put back: its entries no longer match the rows, as after a bad write.
    const define = (name: string, sql: string) => {
      const db = new Database(path);
      db.unsafeMode(true);
      db.pragma("writable_schema = ON");
      db.prepare("UPDATE sqlite_master SET sql = ? WHERE name = ?").run(sql, name);
      db.close();
    };
    // Each connection closed: an open one would hold pages in the -wal the test reads past.
    const sqlOf = (name: string) => {
      const r = new Database(path, { readonly: true });
      const sql = r.prepare("SELECT sql FROM sqlite_master WHERE name = ?").pluck().get(name);
      r.close();
      return sql as string;
    };
    const exec = (sql: string) => {
      const w = new Database(path);
      w.exec(sql);
      w.close();
    };
    const original = sqlOf("trials_by_run");
    define("trials_by_run", "CREATE INDEX trials_by_run ON trials (run_id, id)");
    exec("REINDEX trials_by_run");
    define("trials_by_run", original);

    // A command that writes refuses it, before it records anything, and names the mend.
    const results = join(root, ".autoresearch", "runs", "a", "results.tsv");
    const before = [readFileSync(path), readFileSync(results, "utf8"), sh(root, "git show-ref")];
    for (const args of [
      ["resume", "--tag", "a", "--max-trials", "4"],
      ["run", "--tag", "b"],
    ]) {
      const refused = await runCli([...args, "-C", root]);
      expect(refused.code, args[0]).toBe(5);
      expect(refused.stderr).toMatch(
        /^autoresearch: \S+ledger\.db: an index disagrees with its table \(.*trials_by_run.*\), so queries would miss records; autoresearch left it as it is: `autoresearch doctor --fix` rebuilds the indexes from the tables, which hold the records\n$/,
      );
    }
    expect([readFileSync(path), readFileSync(results, "utf8"), sh(root, "git show-ref")]).toEqual(
      before,
    );

    const doctor = (...args: string[]) => runCli(["doctor", "-C", root, ...args]);
    const found = await doctor();
    expect(found.code).toBe(1);
    expect(found.stdout).toMatch(
      /\nledger: indexes: .*trials_by_run.*; queries may miss records, so the runs are not checked: `autoresearch doctor --fix` rebuilds the indexes from the tables, which hold the records\n$/,
    );
    // While an orchestrator drives a run (this process, alive, stands in for it), the
    // rebuild, which would hold the ledger's lock past the run's wait, is not made.
    const owner = (pid: number | null, start: string | null) => {
      const w = new Database(path);
      const sql = "UPDATE runs SET owner_pid = ?, owner_start = ? WHERE tag = 'a'";
      const { changes } = w.prepare(sql).run(pid, start);
      w.close();
      return changes;
    };
    expect(owner(process.pid, processStartTime(process.pid))).toBe(1);
    const held = await doctor("--fix");
    expect(held.code).toBe(1);
    expect(held.stdout).toMatch(
      /\nledger: indexes: .*trials_by_run.*; queries may miss records, so the runs are not checked: not rebuilt while an orchestrator drives run a, which the rebuild would hold up: stop it, then `autoresearch doctor --fix`\n$/,
    );
    owner(null, null);
    const fixed = await doctor("--fix");
    expect(fixed.code, fixed.stdout).toBe(0);
    expect(fixed.stdout).toMatch(
      /\nledger: fixed indexes: .*trials_by_run.* \(rebuilt from the tables\)\n/,
    );
    const after = await doctor();
    expect(after.code).toBe(0);
    expect(after.stdout).not.toContain("ledger:");
    expect(after.stdout).toContain("run a: ok");
    const db = new Database(path, { readonly: true });
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    expect(db.prepare("SELECT count(*) FROM trials").pluck().get()).toBe(3);
    db.close();

    // Two trials of one number behind a stale unique index: no rebuild settles that, and
    // --fix says so, leaving the ledger as it was.
    const table = sqlOf("trials");
    define("trials", table.replace("UNIQUE (run_id, n)", "UNIQUE (run_id, id)"));
    exec(
      "REINDEX; INSERT INTO trials (run_id, n, parent_commit, state, researcher, created_at) SELECT run_id, n, parent_commit, state, researcher, created_at FROM trials WHERE n = 1",
    );
    define("trials", table);
    const rows = () => {
      const r = new Database(path, { readonly: true });
      const all = r.prepare("SELECT * FROM trials ORDER BY id").all();
      r.close();
      return all;
    };
    const duplicated = rows();
    const unfixable = await doctor("--fix");
    expect(unfixable.code).toBe(1);
    expect(unfixable.stderr).toBe("");
    expect(unfixable.stdout).toMatch(
      /\nledger: indexes: .*; queries may miss records, so the runs are not checked: the rebuild failed \(UNIQUE constraint failed: trials\.run_id, trials\.n\): the tables hold records the index forbids \(two trials of one number, say\), which no rebuild settles; restore the ledger from a backup\n$/,
    );
    expect(rows()).toEqual(duplicated);
    expect(duplicated).toHaveLength(4);
  });
});
