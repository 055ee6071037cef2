import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../src/ledger/db.js";
import { quadraticTask, runCli, sh, tempDir } from "../helpers.js";

/** karpathy/autoresearch's results.tsv, as `import` reads it. */
function resultsTsv(dir: string): string {
  const file = join(dir, "results.tsv");
  writeFileSync(
    file,
    "commit\tscore\tmemory_gb\tstatus\tdescription\nabc1234\t1.0\t0.0\tkeep\tbaseline\n",
  );
  return file;
}

/** Every command that takes -C, with what else it needs to get as far as the folder. */
const COMMANDS = (tsv: string): string[][] => [
  ["status"],
  ["report"],
  ["serve", "--port", "0"],
  ["doctor"],
  ["resume"],
  ["run", "-n", "1"],
  ["try", "-m", "X 2"],
  ["import", tsv, "--tag", "imported"],
  ["delete", "--tag", "a"],
  ["promote"],
  ["noise"],
];

describe("a task folder that is not there", () => {
  it("is refused by every command that takes -C, naming it and creating nothing", async () => {
    const parent = tempDir();
    const missing = join(parent, "typo");
    const tsv = resultsTsv(tempDir());
    const said: [string, number | null, string][] = [];
    for (const args of COMMANDS(tsv)) {
      const result = await runCli([...args, "-C", missing], { timeoutMs: 20_000 });
      said.push([args[0]!, result.code, result.stderr]);
    }
    const refused = `autoresearch: the folder ${missing} does not exist: give -C the task's folder\n`;
    expect(said).toEqual(COMMANDS(tsv).map(([name]) => [name, 3, refused]));
    expect(readdirSync(parent)).toEqual([]);
  });
});

describe("a ledger that cannot be read", () => {
  /** The one line every command gives, naming the file (or, found later, the task's one). */
  const SAID =
    /^autoresearch: (\/\S+\/\.autoresearch\/ledger\.db|the task's \.autoresearch\/ledger\.db) cannot be read as a ledger \([^)]+\); autoresearch left it as it is: restore it from a backup, or move it aside to start a new ledger \(the runs' commits stay in git under refs\/autoresearch\/\)\n$/;

  /** A task whose ledger file is `write`'s, and how each command finds it. */
  async function refusals(write: (path: string) => void, commands: (tsv: string) => string[][]) {
    const root = quadraticTask();
    const path = join(root, ".autoresearch", "ledger.db");
    mkdirSync(join(root, ".autoresearch"));
    write(path);
    const before = readFileSync(path);
    const tsv = resultsTsv(tempDir());
    const seen: [string, number | null, string][] = [];
    for (const args of commands(tsv)) {
      // try needs an edit to try; the others a clean working tree.
      if (args[0] === "try") sh(root, "sed -i 's/^const X = .*;/const X = 2;/' train.mjs");
      const result = await runCli([...args, "-C", root], { timeoutMs: 20_000 });
      sh(root, "git checkout -q -- train.mjs");
      seen.push([args[0]!, result.code, result.stderr]);
      // Never changed, never deleted, whatever the command.
      expect(readFileSync(path).equals(before), args[0]).toBe(true);
    }
    return { seen, path };
  }

  const expectSaid = (seen: [string, number | null, string][]) => {
    for (const [command, code, stderr] of seen) {
      expect(stderr, command).toMatch(SAID);
      expect(code, command).toBe(5);
    }
  };

  const commands = (tsv: string) =>
    COMMANDS(tsv).filter(([name]) => name !== "promote" && name !== "noise");

  it("random bytes: every command that opens the ledger says so in one line and leaves it be", async () => {
    const { seen, path } = await refusals((p) => writeFileSync(p, randomBytes(8192)), commands);
    expectSaid(seen);
    expect(seen[0]![2]).toBe(
      `autoresearch: ${path} cannot be read as a ledger (file is not a database: damaged, or not a ledger); autoresearch left it as it is: restore it from a backup, or move it aside to start a new ledger (the runs' commits stay in git under refs/autoresearch/)\n`,
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
    const { seen } = await refusals(
      (path) => {
        // A real ledger, whose runs table's page is then overwritten.
        const db = openDatabase(path);
        const page = db
          .prepare("SELECT rootpage FROM sqlite_master WHERE name = 'runs'")
          .pluck()
          .get() as number;
        const size = db.pragma("page_size", { simple: true }) as number;
        db.close();
        const bytes = readFileSync(path);
        bytes.fill(0x55, (page - 1) * size, page * size);
        writeFileSync(path, bytes);
      },
      () => [["status"], ["report"], ["doctor"]],
    );
    expectSaid(seen);
    // Found after opening: said where every command's errors end up, without the path.
    for (const [, , stderr] of seen)
      expect(stderr).toMatch(
        /^autoresearch: the task's \.autoresearch\/ledger\.db cannot be read as a ledger \(database disk image is malformed/,
      );
  });
});
