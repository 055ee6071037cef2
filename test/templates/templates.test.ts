import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { parseSummary } from "../../src/metrics/parse.js";
import { startRun } from "../../src/orchestrator/index.js";
import { initTask } from "../../src/task/init.js";
import { loadTask } from "../../src/task/load.js";
import { PYTHON, ROOT, runCli, sh, tempDir } from "../helpers.js";

describe("the tiny-lm template", () => {
  it("prepares its data and trains with the machine's PyTorch, through the harness", async () => {
    const root = await initTask("tiny-lm", join(tempDir(), "tiny-lm"));
    expect(loadTask(root).metric).toMatchObject({ name: "val_bpb", goal: "minimize" });
    // A short budget keeps the test quick; the task is otherwise as shipped.
    writeFileSync(
      join(root, "autoresearch.yaml"),
      readFileSync(join(root, "autoresearch.yaml"), "utf8").replace("budget: 30s", "budget: 4s"),
    );
    sh(root, "git commit -qam 'short budget'");
    process.env.PYTHON = PYTHON;
    try {
      const result = await startRun({
        root,
        tag: "cpu",
        researcher: "mutate",
        maxTrials: 2,
        signal: new AbortController().signal,
        emit: () => undefined,
      });
      expect(result.status).toBe("finished");
    } finally {
      delete process.env.PYTHON;
    }
    const ledger = Ledger.open(root);
    const trials = ledger.trials(ledger.run("cpu")!.id);
    expect(trials[0]).toMatchObject({ verdict: "keep", baseline: true });
    const summary = parseSummary(
      readFileSync(join(root, ".autoresearch/runs/cpu/trials/0/run.log"), "utf8"),
    );
    expect(summary.val_bpb).toBeGreaterThan(0.5);
    expect(summary.val_bpb).toBeLessThan(8.1);
    expect(summary.num_steps).toBeGreaterThan(0);
    expect(summary.training_seconds).toBeGreaterThanOrEqual(4);
    expect(Object.keys(summary)).toEqual([
      "val_bpb",
      "training_seconds",
      "total_seconds",
      "peak_rss_mb",
      "total_tokens_M",
      "num_steps",
      "num_params_M",
      "depth",
    ]);
    expect(["keep", "discard", "crash"]).toContain(trials[1]!.verdict);
    ledger.close();
  }, 180_000);
});

/** An interpreter without torch: the python3 first on PATH here (pyenv's), else Debian's without its site-packages. */
function pythonWithoutTorch(): string {
  const first = sh(ROOT, "command -v python3");
  return spawnSync(first, ["-c", "import torch"]).status === 0 ? `${PYTHON} -S` : first;
}

const NEEDS_TORCH =
  "this task needs PyTorch: set PYTHON to an interpreter that has torch and numpy (e.g. PYTHON=/usr/bin/python3), or install them";

describe("the tiny-lm template without PyTorch", () => {
  it("says once, in its setup and its run, to set PYTHON", async () => {
    const root = await initTask("tiny-lm", join(tempDir(), "tiny-lm"));
    const task = loadTask(root);
    const env = { ...process.env, PYTHON: pythonWithoutTorch() };
    for (const command of [task.setup!, task.run]) {
      // As the harness runs them: through the shell, which expands ${PYTHON:-python3}.
      const result = spawnSync("/bin/sh", ["-c", command], { cwd: root, env, encoding: "utf8" });
      expect(result.status).toBe(1);
      const output = result.stdout + result.stderr;
      expect(output.split(NEEDS_TORCH)).toHaveLength(2);
      expect(output).not.toContain("Traceback");
    }

    // Through the CLI: the setup's log holds the one line, and the error shows it.
    const cli = await runCli(["run", "--tag", "t", "--max-trials", "1"], {
      cwd: root,
      env: { PYTHON: env.PYTHON },
    });
    expect(cli.code).toBe(6);
    expect(cli.stderr).toContain(NEEDS_TORCH);
    const log = readFileSync(join(root, ".autoresearch/runs/t/setup.log"), "utf8");
    expect(log.split(NEEDS_TORCH)).toHaveLength(2);
    expect(log).not.toContain("Traceback");
  }, 60_000);
});

describe("the demo template", () => {
  it("prints a valid summary whose metric responds to its constants", () => {
    const root = tempDir();
    sh(root, `cp -r ${join(ROOT, "templates/demo")}/. .`);
    // Two seconds: on a loaded machine one second trained too few steps to tell the two apart.
    const run = (source: string) => {
      writeFileSync(join(root, "train.mjs"), source);
      return parseSummary(sh(root, "AR_TIME_BUDGET=2 AR_SEED=1 node train.mjs"));
    };
    const original = readFileSync(join(root, "train.mjs"), "utf8");
    const base = run(original);
    expect(base.val_loss).toBeGreaterThan(0);
    expect(base.num_params).toBe(39);
    // A far too small learning rate learns almost nothing: the metric must notice.
    const stalled = run(
      original.replace(/const LEARNING_RATE = [\d.]+;/, "const LEARNING_RATE = 0.00001;"),
    );
    expect(stalled.val_loss).toBeGreaterThan(base.val_loss! + 0.3);
  });
});
