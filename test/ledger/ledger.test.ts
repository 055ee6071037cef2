import { existsSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { LedgerError } from "../../src/errors.js";
import { schemaVersion } from "../../src/ledger/check.js";
import { openDatabase } from "../../src/ledger/db.js";
import { Ledger, type NewRun } from "../../src/ledger/ledger.js";
import { MIGRATIONS } from "../../src/ledger/migrations.js";
import { resultsTsv } from "../../src/ledger/results-tsv.js";
import { tempDir } from "../helpers.js";

const RUN: NewRun = {
  tag: "nov27",
  taskName: "nanogpt",
  taskJson: "{}",
  metric: "val_bpb",
  goal: "minimize",
  baseCommit: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
  branch: "autoresearch/nov27",
  researcher: "mutate",
  judge: "greedy",
  seed: 42,
  maxTrials: 10,
};

function trial(ledger: Ledger, runId: number, n: number, commit: string, title: string) {
  const t = ledger.createTrial({
    runId,
    n,
    baseline: n === 0,
    parentCommit: RUN.baseCommit,
    researcher: "mutate",
  });
  ledger.setTrialProposal(t.id, { title, hypothesis: `${title} helps`, proposeMs: 5 });
  ledger.setTrialCommit(t.id, { commit, commitMs: 3, linesAdded: 1, linesRemoved: 1 });
  return t;
}

describe("the ledger", () => {
  it("answers a run's trials from memory, in step with its own writes and another connection's", () => {
    const root = tempDir();
    const mine = Ledger.open(root);
    const run = mine.createRun(RUN);
    const t0 = trial(mine, run.id, 0, RUN.baseCommit, "baseline");
    expect(mine.trials(run.id).map((t) => t.title)).toEqual(["baseline"]);
    // Its own writes: a new trial, a title, a verdict, the count toward --max-trials.
    const t1 = trial(mine, run.id, 1, "c1", "first");
    mine.finishTrial(t0.id, {
      verdict: "keep",
      reason: "baseline",
      metric: 1,
      incumbentMetric: null,
      metrics: {},
      runMs: 1,
      estimate: null,
    });
    expect(mine.trials(run.id).map((t) => [t.n, t.title, t.verdict])).toEqual([
      [0, "baseline", "keep"],
      [1, "first", null],
    ]);
    expect(mine.countTrials(run.id)).toBe(2);
    // Another connection's writes are seen at the next read.
    const other = Ledger.open(root);
    other.setTrialProposal(t1.id, { title: "renamed", hypothesis: null, proposeMs: 1 });
    trial(other, run.id, 2, "c2", "second");
    expect(mine.trials(run.id).map((t) => t.title)).toEqual(["baseline", "renamed", "second"]);
    expect(mine.countTrials(run.id)).toBe(3);
    // What a rolled-back transaction wrote is not kept.
    expect(() =>
      mine.db.transaction(() => {
        trial(mine, run.id, 3, "c3", "rolled back");
        throw new Error("no");
      })(),
    ).toThrow("no");
    expect(mine.trials(run.id).map((t) => t.n)).toEqual([0, 1, 2]);
    // The rows are shared: nobody may change one in place.
    expect(() => {
      (mine.trials(run.id)[0] as { title: string | null }).title = "changed";
    }).toThrow(TypeError);
    other.close();
    mine.close();
  });

  it("keeps the finished trials and what was tried on each parent in step as trials finish in any order", () => {
    const root = tempDir();
    const ledger = Ledger.open(root);
    const run = ledger.createRun(RUN);
    const done = (id: number, metric: number) =>
      ledger.finishTrial(id, {
        verdict: "discard",
        reason: "worse",
        metric,
        incumbentMetric: 1,
        metrics: {},
        runMs: 1,
        estimate: null,
      });
    const [t0, t1, t2, t3] = [0, 1, 2, 3].map((n) =>
      trial(ledger, run.id, n, `c${n}`, `change ${n}`),
    );
    // Asked for before any trial finished, so that the lists are kept up, not rebuilt.
    expect(ledger.finished(run.id)).toEqual([]);
    expect(ledger.triedOn(run.id, RUN.baseCommit).size).toBe(0);
    done(t2!.id, 2);
    done(t0!.id, 0);
    done(t3!.id, 3);
    const inOrder = (list: { n: number }[]) => list.map((t) => t.n);
    expect(inOrder(ledger.finished(run.id))).toEqual([0, 2, 3]);
    expect([...ledger.triedOn(run.id, RUN.baseCommit).keys()]).toEqual([
      "change 2",
      "change 0",
      "change 3",
    ]);
    // A finished trial rewritten (a held-out result) is seen as it now is.
    ledger.setTrialVerify(t2!.id, { metric: 9, parentMetric: 1, worse: true } as never);
    expect(ledger.finished(run.id).find((t) => t.n === 2)!.verifyMetric).toBe(9);
    expect(ledger.triedOn(run.id, RUN.baseCommit).get("change 2")!.verifyMetric).toBe(9);
    // The list handed out is a copy; the ledger's own is not changed through it.
    ledger.finished(run.id).pop();
    done(t1!.id, 1);
    expect(inOrder(ledger.finished(run.id))).toEqual([0, 1, 2, 3]);
    // The same as a fresh read of the file.
    const fresh = Ledger.open(root);
    expect(fresh.finished(run.id)).toEqual(ledger.finished(run.id));
    expect([...fresh.triedOn(run.id, RUN.baseCommit).keys()].sort()).toEqual(
      [...ledger.triedOn(run.id, RUN.baseCommit).keys()].sort(),
    );
    fresh.close();
    ledger.close();
  });

  it("finds the trial kept at a commit, and compiles each statement once however many trials", () => {
    const ledger = Ledger.open(tempDir());
    const run = ledger.createRun(RUN);
    const finish = (id: number, verdict: "keep" | "discard") =>
      ledger.finishTrial(id, {
        verdict,
        reason: verdict,
        metric: 1,
        incumbentMetric: 2,
        metrics: {},
        runMs: 1,
        estimate: null,
      });
    const prepare = ledger.db.prepare.bind(ledger.db);
    let compiled = 0;
    ledger.db.prepare = ((sql: string) => {
      compiled++;
      return prepare(sql);
    }) as typeof ledger.db.prepare;
    const one = (n: number, verdict: "keep" | "discard") => {
      const t = trial(ledger, run.id, n, `c${n}`, `change ${n}`);
      finish(t.id, verdict);
      ledger.replicates(t.id);
      return t;
    };
    one(0, "keep");
    const first = compiled;
    expect(first).toBeGreaterThan(0);
    const kept = one(1, "keep");
    one(2, "discard");
    expect(compiled).toBe(first);
    expect(ledger.keptAt(run.id, "c1")!.id).toBe(kept.id);
    expect(ledger.keptAt(run.id, "c2")).toBeNull();
    expect(ledger.keptAt(run.id, "elsewhere")).toBeNull();
    // The index behind keptAt stays in step: a later keep is found, a keep rewritten is not.
    const later = one(3, "keep");
    expect(ledger.keptAt(run.id, "c3")!.id).toBe(later.id);
    // A keep rewritten and still kept (its held-out check recorded) is handed back as it now is.
    ledger.setTrialVerify(later.id, {
      metric: 0.5,
      previous: null,
      diverged: false,
      outcome: "ok",
      reason: null,
    });
    expect(ledger.keptAt(run.id, "c3")!.verifyMetric).toBe(0.5);
    finish(later.id, "discard");
    expect(ledger.keptAt(run.id, "c3")).toBeNull();
    expect(ledger.keptAt(run.id, "c1")!.id).toBe(kept.id);
    ledger.close();
  });

  it("lives in WAL mode at the schema's latest version, on disk", () => {
    const root = tempDir();
    const ledger = Ledger.open(root);
    expect(existsSync(join(root, ".autoresearch", "ledger.db"))).toBe(true);
    expect(ledger.db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(schemaVersion(ledger.db)).toBe(MIGRATIONS.length);
    ledger.close();
  });

  it("round-trips runs, trials, proposals, replicates and events through a reopen", () => {
    const root = tempDir();
    let ledger = Ledger.open(root);
    const run = ledger.createRun(RUN);
    const t = trial(ledger, run.id, 0, RUN.baseCommit, "baseline");
    ledger.recordProposal(t.id, {
      researcher: "mutate",
      title: "baseline",
      hypothesis: null,
      detail: { edits: [] },
      error: null,
      durationMs: 5,
    });
    const r = ledger.startReplicate({
      trialId: t.id,
      idx: 0,
      seed: 42,
      slot: null,
      logPath: "/x/run.log",
    });
    ledger.setReplicateProcess(r, { slot: "cpu0", pid: 1234, pidStart: "999" });
    expect(ledger.runningReplicates(run.id).map((x) => x.pid)).toEqual([1234]);
    ledger.finishReplicate(r, {
      outcome: "ok",
      reason: null,
      exitCode: 0,
      signal: null,
      metric: 0.9979,
      metrics: { val_bpb: 0.9979, peak_vram_mb: 45060.2 },
      logBytes: 100,
      logTail: "---\nval_bpb: 0.9979",
      durationMs: 300_100,
    });
    ledger.finishTrial(t.id, {
      verdict: "keep",
      reason: "baseline",
      metric: 0.9979,
      incumbentMetric: null,
      metrics: { val_bpb: 0.9979 },
      runMs: 300_200,
    });
    ledger.event(run.id, t.id, "note", { a: 1 });
    ledger.close();

    ledger = Ledger.open(root);
    const again = ledger.run("nov27")!;
    expect(again).toMatchObject({ ...RUN, status: "running", incumbentId: t.id });
    expect(ledger.incumbent(again.id)).toMatchObject({
      n: 0,
      baseline: true,
      verdict: "keep",
      metric: 0.9979,
      title: "baseline",
    });
    expect(ledger.replicates(t.id)[0]).toMatchObject({
      slot: "cpu0",
      pid: 1234,
      pidStart: "999",
      state: "done",
      outcome: "ok",
      metrics: { peak_vram_mb: 45060.2 },
    });
    expect(ledger.runningReplicates(again.id)).toEqual([]);
    expect(ledger.proposal(t.id)).toEqual({
      researcher: "mutate",
      detail: { edits: [] },
      error: null,
      usage: null,
    });
    const t2 = trial(ledger, again.id, 1, "b".repeat(40), "LR up");
    const usage = {
      model: "claude-sonnet-4-5",
      tokensIn: 1200,
      tokensOut: 300,
      costUsd: 0.0081,
      turns: 3,
    };
    ledger.recordProposal(t2.id, {
      researcher: "anthropic",
      title: "LR up",
      hypothesis: "h",
      detail: null,
      error: null,
      durationMs: 9,
      usage,
    });
    expect(ledger.proposal(t2.id)?.usage).toEqual(usage);
    expect(ledger.spentUsd(again.id)).toBeCloseTo(0.0081);
    expect(ledger.events(again.id).map((e) => [e.kind, e.data])).toEqual([["note", { a: 1 }]]);
    expect(ledger.nextTrialNumber(again.id)).toBe(2);
    ledger.close();
  });

  it("refuses values outside the schema's vocabulary", () => {
    const ledger = new Ledger(openDatabase(":memory:"));
    const run = ledger.createRun(RUN);
    const t = trial(ledger, run.id, 0, RUN.baseCommit, "baseline");
    expect(() =>
      ledger.finishTrial(t.id, {
        verdict: "maybe" as "keep",
        reason: null,
        metric: null,
        incumbentMetric: null,
        metrics: {},
        runMs: 0,
      }),
    ).toThrow(/CHECK constraint/);
    expect(() =>
      ledger.createTrial({
        runId: run.id,
        n: 0,
        baseline: false,
        parentCommit: "x",
        researcher: "m",
      }),
    ).toThrow(/UNIQUE/);
  });

  it("migrates an older database forward, keeping its data", () => {
    const path = join(tempDir(), "ledger.db");
    const extra = "ALTER TABLE runs ADD COLUMN note TEXT; UPDATE runs SET note = 'migrated';";
    const v1 = openDatabase(path, MIGRATIONS);
    new Ledger(v1).createRun(RUN);
    v1.close();
    const later = openDatabase(path, [...MIGRATIONS, extra]);
    expect(schemaVersion(later)).toBe(MIGRATIONS.length + 1);
    expect(later.prepare("SELECT tag, note FROM runs").get()).toEqual({
      tag: "nov27",
      note: "migrated",
    });
    later.close();
  });

  it("applies a failing migration not at all", () => {
    const path = join(tempDir(), "ledger.db");
    openDatabase(path).close();
    expect(() =>
      openDatabase(path, [
        ...MIGRATIONS,
        "ALTER TABLE runs ADD COLUMN x TEXT; SELECT * FROM missing_table;",
      ]),
    ).toThrow();
    const db = new Database(path);
    expect(schemaVersion(db)).toBe(MIGRATIONS.length);
    expect(db.prepare("SELECT name FROM pragma_table_info('runs') WHERE name = 'x'").all()).toEqual(
      [],
    );
    db.close();
  });

  it("refuses a database from a newer version", () => {
    const path = join(tempDir(), "ledger.db");
    const db = new Database(path);
    db.pragma(`user_version = ${MIGRATIONS.length + 5}`);
    db.close();
    expect(() => openDatabase(path)).toThrow(LedgerError);
    expect(() => openDatabase(path)).toThrow(/newer than this autoresearch understands/);
  });
});

describe("results.tsv", () => {
  it("matches the golden file: karpathy/autoresearch's five columns first", () => {
    const ledger = new Ledger(openDatabase(":memory:"));
    const run = ledger.createRun(RUN);
    const rows: [
      string,
      string,
      "keep" | "discard" | "crash" | "timeout" | "invalid",
      number | null,
      Record<string, number>,
      string,
    ][] = [
      ["a1b2c3d4", "baseline", "keep", 0.9979, { peak_vram_mb: 45060.2 }, "baseline"],
      [
        "b2c3d4e5",
        "increase LR to 0.04",
        "keep",
        0.9932,
        { peak_vram_mb: 45260.8 },
        "val_bpb 0.9932 beats the incumbent's 0.9979",
      ],
      [
        "c3d4e5f6",
        "switch to GeLU activation",
        "discard",
        1.005,
        { peak_vram_mb: 45060 },
        "no better",
      ],
      [
        "d4e5f6a7",
        "double model width (OOM)",
        "crash",
        null,
        {},
        "exit code 1: CUDA out of memory",
      ],
      ["e5f6a7b8", "tabs\tand\nnewlines", "timeout", null, {}, "ran past the timeout"],
      [
        "f6a7b8c9",
        "edit prepare.py",
        "invalid",
        null,
        {},
        "changes outside the editable files: prepare.py (protected)",
      ],
    ];
    rows.forEach(([commit, title, verdict, metric, metrics, reason], n) => {
      const t = trial(ledger, run.id, n, commit, title);
      ledger.finishTrial(t.id, {
        verdict,
        reason,
        metric,
        incumbentMetric: null,
        metrics,
        runMs: 300_000 + n * 100,
      });
    });
    trial(ledger, run.id, 6, "0000000", "still running");
    const expected = [
      "commit\tval_bpb\tmemory_gb\tstatus\tdescription\ttrial\tverdict\tlines_added\tlines_removed\tseconds\treason\tpeak_vram_mb",
      "a1b2c3d\t0.997900\t44.0\tkeep\tbaseline\t0\tkeep\t1\t1\t300.0\tbaseline\t45060.2",
      "b2c3d4e\t0.993200\t44.2\tkeep\tincrease LR to 0.04\t1\tkeep\t1\t1\t300.1\tval_bpb 0.9932 beats the incumbent's 0.9979\t45260.8",
      "c3d4e5f\t1.005000\t44.0\tdiscard\tswitch to GeLU activation\t2\tdiscard\t1\t1\t300.2\tno better\t45060",
      "d4e5f6a\t0.000000\t0.0\tcrash\tdouble model width (OOM)\t3\tcrash\t1\t1\t300.3\texit code 1: CUDA out of memory\t",
      "e5f6a7b\t0.000000\t0.0\tcrash\ttabs and newlines\t4\ttimeout\t1\t1\t300.4\tran past the timeout\t",
      "f6a7b8c\t0.000000\t0.0\tcrash\tedit prepare.py\t5\tinvalid\t1\t1\t300.5\tchanges outside the editable files: prepare.py (protected)\t",
      "",
    ].join("\n");
    expect(resultsTsv(ledger.trials(run.id), "val_bpb", ["peak_vram_mb"])).toBe(expected);
  });
});
