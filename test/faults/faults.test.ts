import { execFileSync } from "node:child_process";
import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { startRun } from "../../src/orchestrator/index.js";
import { quadraticTask, runCli, sh, tempDir, waitFor } from "../helpers.js";

/** The run's trials, as the ledger has them. */
function trials(root: string, tag: string) {
  const ledger = Ledger.open(root);
  const run = ledger.run(tag)!;
  const rows = ledger.trials(run.id);
  const replicates = rows.flatMap((t) => ledger.replicates(t.id));
  ledger.close();
  return { run, rows, replicates };
}

/** The trials that count toward --max-trials: not interrupted ones. */
const counted = (rows: { verdict: string | null }[]) =>
  rows.filter((t) => t.verdict !== "interrupted");

/** Waits until a run started elsewhere has `n` trials (its ledger may not exist yet). */
function untilTrials(root: string, tag: string, n: number) {
  return waitFor(() => {
    try {
      return trials(root, tag).rows.length >= n;
    } catch {
      return false;
    }
  }, 30_000);
}

/** `doctor` finds nothing wrong, and every trial is done. */
async function consistent(root: string, tag: string) {
  const doctor = await runCli(["doctor", "-C", root]);
  expect(doctor.stdout).toMatch(new RegExp(`^sandbox: [^\n]+\nrun ${tag}: ok\n$`));
  expect(doctor.code).toBe(0);
  expect(trials(root, tag).rows.every((t) => t.state === "done")).toBe(true);
}

const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts) execFileSync("umount", ["-l", m]);
});

describe("faults", () => {
  it("a full disk stops the run with a clear message; after space is freed, resume finishes it", async () => {
    const mount = tempDir("ar-full-");
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=6m", "tmpfs", mount]);
    mounts.push(mount);
    const source = quadraticTask();
    const root = join(mount, "task");
    sh(mount, `git clone -q ${source} task`);
    // Trial 2's replicate fills the disk (once), then reports as usual.
    writeFileSync(
      join(root, "autoresearch.yaml"),
      [
        "editable: [train.mjs]",
        // Into the trial's folder, which a replicate may write, sandbox or not.
        `run: 'dir=$(dirname "$AR_RESULT_FILE"); if [ "$AR_TRIAL" = 2 ] && [ ! -e "$dir/filled" ]; then touch "$dir/filled"; head -c 50000000 /dev/zero > "$dir/fill"; fi; node train.mjs'`,
        "metric: { name: score, goal: minimize }",
      ].join("\n"),
    );
    sh(root, "git -c user.name=t -c user.email=t@t commit -qam 'fill the disk at trial 2'");
    const first = await runCli(["run", "-C", root, "--tag", "full", "--max-trials", "5"]);
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(
      /^autoresearch: the disk is full \(.+\); nothing recorded is lost: free some space, then `autoresearch resume`\n$/,
    );
    const before = trials(root, "full");
    expect(before.rows.slice(0, 2).map((t) => t.state)).toEqual(["done", "done"]);

    rmSync(join(root, ".autoresearch/runs/full/trials/2/fill"));
    const resumed = await runCli(["resume", "-C", root]);
    expect(resumed.stderr).toBe("");
    expect(resumed.code).toBe(0);
    const after = trials(root, "full");
    expect(after.rows).toHaveLength(5);
    // What was recorded before the disk filled is still there, unchanged.
    expect(after.rows.slice(0, 2)).toEqual(before.rows.slice(0, 2));
    await consistent(root, "full");
  }, 120_000);

  it("a reader holding the ledger open, and a writer locking it for 3 s, only slow the run", async () => {
    const root = quadraticTask({ sleep: 0.5 });
    const child = runCli(["run", "-C", root, "--tag", "locked", "--max-trials", "5"]);
    const path = join(root, ".autoresearch/ledger.db");
    await untilTrials(root, "locked", 2);
    // A dashboard-like reader in the middle of a read, for the rest of the run.
    const reader = new Database(path, { readonly: true });
    reader.exec("BEGIN");
    reader.prepare("SELECT COUNT(*) FROM trials").get();
    const writer = new Database(path);
    writer.exec("BEGIN EXCLUSIVE");
    await new Promise((r) => setTimeout(r, 3000));
    writer.exec("COMMIT");
    writer.close();
    const result = await child;
    reader.exec("COMMIT");
    reader.close();
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(trials(root, "locked").rows).toHaveLength(5);
    await consistent(root, "locked");
  }, 120_000);

  it("a ledger locked past the busy timeout stops the run cleanly, and resume goes on", async () => {
    const root = quadraticTask({ sleep: 0.3 });
    const child = runCli(["run", "-C", root, "--tag", "stuck", "--max-trials", "5"]);
    const path = join(root, ".autoresearch/ledger.db");
    await untilTrials(root, "stuck", 2);
    const writer = new Database(path);
    writer.exec("BEGIN EXCLUSIVE");
    const result = await child;
    writer.exec("COMMIT");
    writer.close();
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^autoresearch: the ledger stayed locked by another process/);
    const resumed = await runCli(["resume", "-C", root]);
    expect(resumed.stderr).toBe("");
    expect(resumed.code).toBe(0);
    // Five counted trials; one the lock interrupted, if any, ran again or was replaced.
    expect(counted(trials(root, "stuck").rows)).toHaveLength(5);
    await consistent(root, "stuck");
  }, 120_000);

  it("a failing git stops the run with git's message; the trial is interrupted, not blamed", async () => {
    const root = quadraticTask();
    const shim = tempDir();
    const marker = join(shim, "fail");
    // git itself, except that making a commit fails while the marker exists.
    writeFileSync(
      join(shim, "git"),
      `#!/bin/sh\ncase " $* " in *" commit-tree "*) if [ -e "${marker}" ]; then echo "fatal: simulated failure" >&2; exit 128; fi;; esac\nexec /usr/bin/git "$@"\n`,
    );
    chmodSync(join(shim, "git"), 0o755);
    writeFileSync(marker, "");
    const env = { PATH: `${shim}:${process.env.PATH}` };
    const first = await runCli(["run", "-C", root, "--tag", "git", "--max-trials", "4"], { env });
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(
      /^autoresearch: git commit-tree .* failed: fatal: simulated failure; nothing recorded is lost/,
    );
    rmSync(marker);
    const resumed = await runCli(["resume", "-C", root], { env });
    expect(resumed.stderr).toBe("");
    expect(resumed.code).toBe(0);
    const { rows } = trials(root, "git");
    expect(rows[1]).toMatchObject({
      verdict: "interrupted",
      reason: expect.stringMatching(
        /^stopped by an error of the harness: git commit-tree .* failed: fatal: simulated failure$/,
      ),
    });
    // The interrupted trial had no commit to run again: a new proposal took its place.
    expect(counted(rows)).toHaveLength(4);
    expect(rows).toHaveLength(5);
    await consistent(root, "git");
  }, 120_000);

  it("a metric printed twice with different values, or as garbage, is a bad metric with the reason", async () => {
    const root = quadraticTask({
      yaml: [
        "editable: [train.mjs]",
        `run: 'node train.mjs; if [ "$AR_TRIAL" = 1 ]; then echo "score: 0.001"; fi; if [ "$AR_TRIAL" = 2 ]; then echo "---"; echo "score: banana"; fi'`,
        "metric: { name: score, goal: minimize }",
      ].join("\n"),
    });
    await startRun({
      root,
      tag: "m",
      researcher: "mutate",
      maxTrials: 3,
      lookahead: 0,
      signal: new AbortController().signal,
      emit: () => undefined,
    });
    const { rows, replicates } = trials(root, "m");
    expect(rows.map((t) => t.verdict)).toEqual(["keep", "crash", "crash"]);
    expect(replicates[1]).toMatchObject({
      outcome: "bad_metric",
      reason: expect.stringMatching(
        /^score is printed 2 times with different values \(.+, 0\.001\)$/,
      ),
    });
    expect(replicates[2]).toMatchObject({
      outcome: "bad_metric",
      reason: 'score is not a number: "banana"',
    });
  });

  it("the wall clock jumping forward or back ends no run early and records no negative time", async () => {
    const root = quadraticTask({ sleep: 0.4 });
    const clock = join(tempDir(), "clock");
    writeFileSync(clock, "+0");
    const env = {
      LD_PRELOAD: "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
      FAKETIME_TIMESTAMP_FILE: clock,
      FAKETIME_NO_CACHE: "1",
      DONT_FAKE_MONOTONIC: "1",
    };
    const child = runCli(
      ["run", "-C", root, "--tag", "clock", "--max-trials", "6", "--max-hours", "1"],
      { env },
    );
    await untilTrials(root, "clock", 2);
    writeFileSync(clock, "+3h");
    await untilTrials(root, "clock", 4);
    writeFileSync(clock, "-3h");
    const result = await child;
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const { run, rows, replicates } = trials(root, "clock");
    expect(run.stopReason).toBe("reached --max-trials 6");
    expect(rows).toHaveLength(6);
    for (const r of replicates) expect(r.durationMs).toBeGreaterThanOrEqual(400);
    for (const t of rows.filter((t) => !t.baseline)) expect(t.runMs).toBeGreaterThan(0);
    const tsv = readFileSync(join(root, ".autoresearch/runs/clock/results.tsv"), "utf8");
    expect(tsv).not.toMatch(/\t-\d/);
  }, 120_000);
});
