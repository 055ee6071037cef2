import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { resultsTsv } from "../../src/ledger/results-tsv.js";
import { quadraticTask, runCli, tempDir } from "../helpers.js";
import { pngSize } from "./checks.js";
import { fixtureLedger } from "./fixture.js";

// karpathy/autoresearch's results.tsv: five tab-separated columns, the metric named in
// the header, 0.000000 for crashes, the first row the baseline.
const ORIGINAL = [
  "commit\tval_bpb\tmemory_gb\tstatus\tdescription",
  "a1b2c3d\t0.997900\t44.0\tkeep\tbaseline",
  "b2c3d4e\t0.993200\t44.2\tkeep\tincrease LR to 0.04",
  "c3d4e5f\t1.005000\t44.0\tdiscard\tswitch to GeLU activation",
  "d4e5f60\t0.000000\t0.0\tcrash\tdouble model width (OOM)",
  "e5f6a7b\t0.990100\t44.5\tkeep\twarmup 5% of steps",
  "",
].join("\n");

describe("autoresearch import", () => {
  it("into a task folder: doctor knows an imported run is a record without commits", async () => {
    const root = quadraticTask();
    const file = join(tempDir(), "results.tsv");
    writeFileSync(file, ORIGINAL);
    expect((await runCli(["import", file, "--tag", "mar5", "-C", root])).code).toBe(0);
    expect((await runCli(["run", "-C", root, "-t", "own", "-n", "2"])).code).toBe(0);
    const doctor = await runCli(["doctor", "-C", root]);
    expect(doctor.stdout).not.toContain("missing");
    expect(doctor.code).toBe(0);
    const fixed = await runCli(["doctor", "-C", root, "--fix"]);
    expect(fixed.code).toBe(0);
  });

  it("records the original's results.tsv as a run in a folder that is no task, and report draws it", async () => {
    const dir = tempDir();
    const file = join(dir, "results.tsv");
    writeFileSync(file, ORIGINAL);
    const result = await runCli(["import", file, "--tag", "mar5", "-C", dir]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("imported run mar5");

    const ledger = Ledger.open(dir);
    const run = ledger.run("mar5")!;
    expect(run).toMatchObject({ metric: "val_bpb", goal: "minimize", status: "finished" });
    const trials = ledger.trials(run.id);
    expect(trials.map((t) => [t.n, t.baseline, t.verdict, t.metric, t.commit, t.title])).toEqual([
      [0, true, "keep", 0.9979, "a1b2c3d", "baseline"],
      [1, false, "keep", 0.9932, "b2c3d4e", "increase LR to 0.04"],
      [2, false, "discard", 1.005, "c3d4e5f", "switch to GeLU activation"],
      [3, false, "crash", null, "d4e5f60", "double model width (OOM)"],
      [4, false, "keep", 0.9901, "e5f6a7b", "warmup 5% of steps"],
    ]);
    // Each trial's parent is the incumbent of its time, and it was judged against that.
    expect(trials[2]).toMatchObject({ parentCommit: "b2c3d4e", incumbentMetric: 0.9932 });
    expect(trials[1]!.metrics).toEqual({ memory_gb: 44.2 });
    expect(ledger.incumbent(run.id)?.commit).toBe("e5f6a7b");
    ledger.close();

    const report = await runCli(["report", "-C", dir, "--tag", "mar5"]);
    expect(report.stderr).toBe("");
    expect(report.code).toBe(0);
    const out = join(dir, ".autoresearch/runs/mar5");
    expect(readFileSync(join(out, "progress.svg"), "utf8")).toContain(
      "4 experiments, 2 kept improvements",
    );
    expect(pngSize(join(out, "progress.png")).width).toBeGreaterThan(1000);
    expect(readFileSync(join(out, "report.html"), "utf8")).toContain("warmup 5% of steps");
  });

  it("has status name the imported file, not a branch or results.tsv that do not exist", async () => {
    const dir = tempDir();
    const file = join(dir, "history.tsv");
    writeFileSync(file, ORIGINAL);
    expect((await runCli(["import", file, "--tag", "mar5", "-C", dir])).code).toBe(0);
    const status = await runCli(["status"], { cwd: dir });
    expect(status.stderr).toBe("");
    expect(status.stdout).toMatch(/^run mar5: finished · researcher imported/);
    expect(status.stdout).toContain(
      "  val_bpb: baseline 0.9979 → best 0.9901 (trial 4, +0.78% better)\n  imported from history.tsv\n",
    );
    expect(status.stdout).not.toMatch(/branch|results\.tsv/);
  });

  it("says in its help that --tag is required and what it imports", async () => {
    const help = await runCli(["import", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("results.tsv (one row per experiment, the first");
    expect(help.stdout).toMatch(/-t, --tag <tag> +required: the name to give the imported run/);
    const dir = tempDir();
    writeFileSync(join(dir, "results.tsv"), ORIGINAL);
    const untagged = await runCli(["import", "results.tsv"], { cwd: dir });
    expect(untagged.code).toBe(2);
    expect(untagged.stderr).toContain("error: required option '-t, --tag <tag>' not specified");
    expect(existsSync(join(dir, ".autoresearch"))).toBe(false);
  });

  it("round-trips our own results.tsv, extra columns included", async () => {
    const source = tempDir();
    const { ledger, run } = fixtureLedger(source);
    const original = ledger.trials(run.id);
    const dir = tempDir();
    const file = join(dir, "results.tsv");
    writeFileSync(file, resultsTsv(original, "val_bpb", ["steps"]));
    ledger.close();
    const result = await runCli(["import", file, "--tag", "copy", "-C", dir]);
    expect(result.code).toBe(0);
    const copy = Ledger.open(dir);
    const trials = copy.trials(copy.run("copy")!.id);
    expect(trials.map((t) => [t.verdict, t.metric, t.title, t.metrics.steps ?? null])).toEqual(
      original.map((t) => [t.verdict, t.metric, t.title, t.metric === null ? null : 10]),
    );
    copy.close();
    const again = await runCli(["import", file, "--tag", "copy", "-C", dir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('--tag: run "copy" already exists');
  });

  it("names the line and the field of every problem, and writes nothing", async () => {
    const dir = tempDir();
    const file = join(dir, "results.tsv");
    writeFileSync(
      file,
      [
        "commit\tval_bpb\tmemory_gb\tstatus\tdescription",
        "a1b2c3d\t0.997900\t44.0\tkeep\tbaseline",
        "b2c3d4e\t0.993200\t44.2\tkept\tincrease LR",
        "c3d4e5f\tabc\t44.0\tdiscard\tGeLU",
        "d4e5f60\t0.99",
        "",
      ].join("\n"),
    );
    const result = await runCli(["import", file, "--tag", "bad", "-C", dir]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'results.tsv:3: status: must be one of keep, discard, crash, got "kept"',
    );
    expect(result.stderr).toContain('results.tsv:4: val_bpb: must be a number, got "abc"');
    expect(result.stderr).toContain("results.tsv:5: expected 5 tab-separated fields");
    expect(existsSync(join(dir, ".autoresearch"))).toBe(false);

    writeFileSync(file, "commit,val_bpb,memory_gb,status,description\n");
    const header = await runCli(["import", file, "--tag", "bad", "-C", dir]);
    expect(header.code).toBe(2);
    expect(header.stderr).toContain("results.tsv:1: header: expected the columns commit");
    const missing = await runCli(["import", join(dir, "nope.tsv"), "--tag", "x", "-C", dir]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("nope.tsv: no such file");
  });
});
