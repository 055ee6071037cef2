import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { jobState } from "../../src/executors/slurm-cli.js";
import { Ledger } from "../../src/ledger/ledger.js";
import type { RunEvent } from "../../src/orchestrator/events.js";
import { type StartOptions, startRun } from "../../src/orchestrator/index.js";
import { quadraticTask, ROOT, runCli, waitFor } from "../helpers.js";

/** A real single-node SLURM with fake GPUs, started here if it is not running. */
beforeAll(() => {
  execFileSync(join(ROOT, "scripts/slurm-local.sh"), { stdio: "pipe", timeout: 240_000 });
}, 300_000);

const NODE = execFileSync("hostname", ["-s"], { encoding: "utf8" }).trim();

function task(run: string, extra = "") {
  return quadraticTask({
    yaml: [
      "editable: [train.mjs]",
      `run: '${run}'`,
      "budget: 5s",
      "timeout: 60s",
      "metric: { name: score, goal: minimize }",
      "resources: { gpus: 1 }",
      "slurm: { poll: 500ms }",
      extra,
    ].join("\n"),
  });
}

async function run(root: string, options: Partial<StartOptions> = {}) {
  const events: RunEvent[] = [];
  const result = await startRun({
    root,
    tag: "s",
    researcher: "mutate",
    maxTrials: 2,
    executor: { kind: "slurm", jobs: 2 },
    signal: new AbortController().signal,
    emit: (e) => events.push(e),
    ...options,
  });
  return { result, events, ...records(root) };
}

function records(root: string) {
  if (!existsSync(Ledger.pathFor(root))) return { trials: [], replicates: [] };
  const ledger = Ledger.open(root);
  const r = ledger.run("s");
  if (!r) {
    ledger.close();
    return { trials: [], replicates: [] };
  }
  const trials = ledger.trials(r.id);
  const replicates = trials.flatMap((t) => ledger.replicates(t.id));
  ledger.close();
  return { trials, replicates };
}

describe("the SLURM executor, on a real single-node cluster", () => {
  it("runs each replicate as a job with its GPU, its own environment only, and reads the log", async () => {
    process.env.FAKE_API_KEY = "sk-never-in-a-job";
    const root = task(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, not a template
      'echo "gpus=$CUDA_VISIBLE_DEVICES key=${FAKE_API_KEY:-none}"; node train.mjs',
    );
    try {
      const { result, trials, replicates } = await run(root);
      expect(result.status).toBe("finished");
      expect(trials.map((t) => t.verdict)).toEqual(["keep", expect.stringMatching(/keep|discard/)]);
      for (const r of replicates) {
        expect(r.jobId).toMatch(/^\d+$/);
        expect(r.slot).toMatch(/^job\d$/);
        expect(r.runningAt).not.toBeNull();
        const log = readFileSync(r.logPath, "utf8");
        expect(log).toMatch(/gpus=\d key=none/);
        expect(log).toContain("---\nscore:");
        expect(await jobState(r.jobId!)).toMatchObject({ state: "COMPLETED", exitCode: 0 });
      }
      expect(
        readFileSync(join(root, ".autoresearch/runs/s/trials/0/run.sbatch"), "utf8"),
      ).not.toContain("sk-never");
    } finally {
      delete process.env.FAKE_API_KEY;
    }
  });

  it("runs the job's replicate in bubblewrap on the node: the checkout read-only, nothing left behind", async () => {
    const mark = `ar-slurm-daemon-${process.pid}`;
    const root = task(
      `(echo x > ../../../escape.txt) 2>/dev/null && echo wrote || echo read-only; (setsid env -i sh -c "while :; do sleep 1; done" ${mark} &); node train.mjs`,
      "sandbox: bwrap",
    );
    const { result, replicates } = await run(root, { maxTrials: 1 });
    expect(result.status).toBe("finished");
    expect(readFileSync(replicates[0]!.logPath, "utf8")).toContain("read-only");
    expect(existsSync(join(root, "escape.txt"))).toBe(false);
    expect(readFileSync(join(root, ".autoresearch/runs/s/trials/0/run.sbatch"), "utf8")).toContain(
      "exec 'bwrap' '--unshare-all'",
    );
    // pgrep leaves itself out, and no shell around it holds the mark.
    const left = spawnSync("pgrep", ["-f", mark], { encoding: "utf8" });
    expect(left.stdout.trim()).toBe("");
  });

  it("records a crashing job as a crash with its exit code and last line", async () => {
    const root = task('echo "Traceback: boom" >&2; exit 3');
    const { result, replicates } = await run(root);
    expect(result.status).toBe("failed");
    expect(replicates[0]).toMatchObject({
      outcome: "crash",
      reason: "exit code 3: Traceback: boom",
    });
    expect(await jobState(replicates[0]!.jobId!)).toMatchObject({ state: "FAILED", exitCode: 3 });
  });

  it("cancels the running job when the run is stopped", async () => {
    const root = task("sleep 300");
    const controller = new AbortController();
    const events: RunEvent[] = [];
    const pending = startRun({
      root,
      tag: "s",
      researcher: "mutate",
      maxTrials: 2,
      executor: { kind: "slurm", jobs: 1 },
      signal: controller.signal,
      emit: (e) => events.push(e),
    });
    await waitFor(() => records(root).replicates[0]?.runningAt, 60_000, "the job to run");
    controller.abort();
    const result = await pending;
    expect(result.status).toBe("stopped");
    const { trials, replicates } = records(root);
    expect(trials[0]!.verdict).toBe("interrupted");
    await waitFor(
      async () => (await jobState(replicates[0]!.jobId!)).state === "CANCELLED",
      30_000,
      "CANCELLED",
    );
    expect((await jobState(replicates[0]!.jobId!)).state).toBe("CANCELLED");
  });

  it("submits a replicate again when its node fails", async () => {
    const root = task("sleep 4; node train.mjs");
    const pending = run(root, { maxTrials: 1 });
    const first = await waitFor(
      () => {
        const r = records(root).replicates[0];
        return r?.runningAt ? r.jobId : null;
      },
      60_000,
      "the job to run",
    );
    execFileSync("scontrol", [
      "update",
      `nodename=${NODE}`,
      "state=down",
      "reason=autoresearch-test",
    ]);
    await waitFor(async () => (await jobState(first!)).state === "NODE_FAIL", 30_000, "NODE_FAIL");
    // With ReturnToService=2 the node may already be back by itself.
    try {
      execFileSync("scontrol", ["update", `nodename=${NODE}`, "state=resume"], { stdio: "pipe" });
    } catch {}
    const { result, replicates } = await pending;
    expect(result.status).toBe("finished");
    expect(replicates[0]!.jobId).not.toBe(first);
    expect(replicates[0]).toMatchObject({ outcome: "ok", metric: 4.5 });
  });

  it("ends a job that runs past its time limit as a timeout", async () => {
    const root = task("sleep 600");
    const { trials, replicates } = await run(root, { maxTrials: 1 });
    expect(trials[0]!.verdict).toBe("timeout");
    expect((await jobState(replicates[0]!.jobId!)).state).toBe("TIMEOUT");
  }, 240_000);

  it("re-attaches to a running job after the orchestrator is killed", async () => {
    const root = task("sleep 10; node train.mjs");
    const first = runCli([
      "run",
      "-C",
      root,
      "--tag",
      "s",
      "--executor",
      "slurm",
      "--slots",
      "1",
      "--max-trials",
      "2",
    ]);
    const replicate = await waitFor(
      () => records(root).replicates.find((r) => r.runningAt && r.jobId),
      60_000,
      "a running job",
    );
    const ledger = Ledger.open(root);
    const owner = ledger.run("s")!.ownerPid!;
    ledger.close();
    process.kill(owner, "SIGKILL");
    expect((await first).signal).toBe("SIGKILL");
    expect((await jobState(replicate.jobId!)).state).toBe("RUNNING");
    const resumed = await runCli(["resume", "-C", root]);
    expect(resumed.stderr).toBe("");
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain("recovered: 1 trial(s) continued");
    const { trials, replicates } = records(root);
    expect(trials[0]).toMatchObject({ verdict: "keep", metric: 4.5 });
    expect(replicates[0]).toMatchObject({ jobId: replicate.jobId, outcome: "ok" });
    expect(trials).toHaveLength(2);
  }, 180_000);

  it("says what to do when the cluster refuses the job, and the run resumes elsewhere", async () => {
    const root = quadraticTask({
      yaml: [
        "editable: [train.mjs]",
        "run: node train.mjs",
        "metric: { name: score, goal: minimize }",
        "slurm: { poll: 500ms }",
      ].join("\n"),
    });
    const refused = await runCli([
      "run",
      "-C",
      root,
      "--tag",
      "s",
      "--executor",
      "slurm",
      "--sbatch-arg=--partition=nosuch",
      "--max-trials",
      "1",
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).not.toMatch(/unexpected error|\n\s+at /);
    expect(refused.stderr).toMatch(
      /SLURM refused: sbatch [\s\S]*Invalid partition[\s\S]*; nothing recorded is lost: fix the cause \(`sinfo` lists the partitions\), then `autoresearch resume` with the run's --tag: it submits with the flags the run was started with unless given `--executor slurm` and new ones, or `--executor local` to run on this machine/,
    );
    expect(records(root).trials.map((t) => t.verdict)).toEqual(["interrupted"]);
    const local = await runCli(["resume", "-C", root, "--executor", "local"]);
    expect(local.code, local.stderr).toBe(0);
    expect(records(root).trials.at(-1)).toMatchObject({ verdict: "keep", metric: 4.5 });
  }, 120_000);
});
