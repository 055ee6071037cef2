import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { isAlive } from "../../src/util/proc.js";
import {
  CLI,
  QUADRATIC_YAML,
  quadraticTask,
  runCli,
  sh,
  survivors,
  tempDir,
  waitFor,
} from "../helpers.js";

/** The replicate the ledger says is running (of trial `n` if given), once its process is recorded. */
function runningReplicate(root: string, n?: number) {
  if (!existsSync(join(root, ".autoresearch/ledger.db"))) return null;
  const ledger = Ledger.open(root);
  try {
    const run = ledger.runs()[0];
    if (!run) return null;
    const trialId = n === undefined ? undefined : ledger.trial(run.id, n)?.id;
    return (
      ledger
        .runningReplicates(run.id)
        .find((r) => r.pid !== null && (n === undefined || r.trialId === trialId)) ?? null
    );
  } finally {
    ledger.close();
  }
}

/** Where this machine's pids cgroups are (cgroup v1), when it has them. */
const PIDS = "/sys/fs/cgroup/pids";

describe("the command line", () => {
  it("explains itself and refuses bad flags with exit code 2", async () => {
    const help = await runCli(["--help"]);
    expect(help.code).toBe(0);
    for (const command of ["init", "run", "resume", "status", "demo"])
      expect(help.stdout).toContain(command);
    const bad = await runCli(["run", "--max-trials", "many"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('must be a whole number ≥ 1, got "many"');
    expect((await runCli(["frobnicate"])).code).toBe(2);
  });

  it("init writes a committed task from a template, and refuses a non-empty folder or unknown template", async () => {
    const dir = join(tempDir(), "task");
    const result = await runCli(["init", "--template", "demo", dir]);
    expect(result.code).toBe(0);
    expect(sh(dir, "git status --porcelain")).toBe("");
    expect(sh(dir, "git ls-files")).toBe("autoresearch.yaml\nprepare.mjs\nprogram.md\ntrain.mjs");
    const again = await runCli(["init", dir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists and is not empty/);
    const unknown = await runCli(["init", "--template", "nope", join(tempDir(), "x")]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no template "nope"; available: demo, nanogpt, tiny-lm');
  });

  it("status says there are no runs yet, also once a ledger exists without one", async () => {
    const root = quadraticTask();
    const fresh = await runCli(["status"], { cwd: root });
    expect(fresh.code).toBe(0);
    // As `report` says it, though a task before its first run is no failure here.
    expect(fresh.stdout).toBe(
      `no runs yet in ${root}: no ledger (${root}/.autoresearch/ledger.db); start a run with \`autoresearch run\`\n`,
    );
    Ledger.open(root).close();
    expect((await runCli(["status"], { cwd: root })).stdout).toMatch(/^no runs yet in /);
    // A folder that is not there is a mistaken -C, not a task without runs.
    const missing = join(tempDir(), "missing");
    const wrong = await runCli(["status", "-C", missing]);
    expect(wrong.code).toBe(3);
    expect(wrong.stdout).toBe("");
    expect(wrong.stderr).toBe(
      `autoresearch: the folder ${missing} does not exist: give -C the task's folder\n`,
    );
    const file = join(root, "autoresearch.yaml");
    const notFolder = await runCli(["status", "-C", file]);
    expect(notFolder.code).toBe(3);
    expect(notFolder.stderr).toBe(
      `autoresearch: ${file} is not a folder: give -C the task's folder\n`,
    );
  });

  it("maps operator mistakes to stable exit codes with the field named", async () => {
    const notRepo = tempDir();
    writeFileSync(
      join(notRepo, "autoresearch.yaml"),
      "run: x\neditable: [a]\nmetric: {name: m, goal: minimize}\n",
    );
    const r1 = await runCli(["run", "-C", notRepo]);
    expect(r1.code).toBe(4);
    expect(r1.stderr).toMatch(/is not a git repository/);
    writeFileSync(
      join(notRepo, "autoresearch.yaml"),
      "run: x\neditable: [a]\nmetric: {name: m, goal: best}\n",
    );
    const r2 = await runCli(["run", "-C", notRepo]);
    expect(r2.code).toBe(3);
    expect(r2.stderr).toContain('metric.goal: must be one of minimize, maximize, got "best"');
    const r3 = await runCli(["resume", "-C", quadraticTask()]);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toContain("no run to resume in this task");
  });

  it("resumes after the orchestrator is killed with SIGKILL mid-trial: no finished trial lost, no orphan left", async () => {
    // Without the sandbox, a replicate outlives its orchestrator until resume ends it.
    const root = quadraticTask({ yaml: [...QUADRATIC_YAML, "sandbox: none"].join("\n") });
    const env = { TEST_SLEEP_S: "60", TEST_SLEEP_TRIAL: "1" };
    const first = runCli(["run", "-C", root, "--tag", "k", "--max-trials", "4"], { env });
    const replicate = await waitFor(() => runningReplicate(root, 1), 30_000, "trial 1's replicate");
    const ledger = Ledger.open(root);
    const run = ledger.run("k")!;
    const ownerPid = run.ownerPid!;
    ledger.close();
    process.kill(ownerPid, "SIGKILL");
    const killed = await first;
    expect(killed.signal).toBe("SIGKILL");
    // The replicate outlived its orchestrator: an orphan until resume ends it.
    expect(isAlive(replicate.pid!, replicate.pidStart)).toBe(true);

    const resumed = await runCli(["resume", "-C", root], { env: { TEST_SLEEP_S: "0" } });
    expect(resumed.stderr).toBe("");
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain(
      "recovered: 1 trial(s) continued, 0 recorded as interrupted, 1 orphaned process group(s) ended",
    );
    expect(isAlive(replicate.pid!, replicate.pidStart)).toBe(false);

    const after = Ledger.open(root);
    const trials = after.trials(after.run("k")!.id);
    expect(trials.map((t) => [t.n, t.state, t.verdict])).toEqual([
      [0, "done", "keep"],
      [1, "done", expect.stringMatching(/keep|discard/)],
      [2, "done", expect.any(String)],
      [3, "done", expect.any(String)],
    ]);
    expect(after.replicates(trials[0]!.id)).toHaveLength(1);
    // The killed replicate is on record; the trial went on with a new one, on the same seed.
    expect(after.replicates(trials[1]!.id).map((r) => [r.idx, r.seed, r.outcome])).toEqual([
      [0, 42, "interrupted"],
      [1, 42, "ok"],
    ]);
    expect(after.replicates(trials[1]!.id)[0]!.reason).toBe(
      "the orchestrator stopped while it ran",
    );
    expect(after.run("k")).toMatchObject({ status: "finished", ownerPid: null });
    after.close();
    expect(sh(root, "git worktree list").split("\n")).toHaveLength(1);
    expect(
      sh(root, "git for-each-ref --format='%(refname)' refs/autoresearch/k/trials | wc -l"),
    ).toBe("4");
    const status = await runCli(["status", "-C", root, "--trials", "4"]);
    expect(status.stdout).toMatch(/run k: finished \(reached --max-trials 4\)/);
    expect(status.stdout).toMatch(/#1 +(keep|discard) /);
  });

  it("in bubblewrap, a replicate dies with its killed orchestrator, and resume runs it again", async () => {
    const root = quadraticTask({ yaml: [...QUADRATIC_YAML, "sandbox: bwrap"].join("\n") });
    const env = { TEST_SLEEP_S: "60", TEST_SLEEP_TRIAL: "1" };
    const first = runCli(["run", "-C", root, "--tag", "k", "--max-trials", "3"], { env });
    const replicate = await waitFor(() => runningReplicate(root, 1), 30_000, "trial 1's replicate");
    // Once its program runs inside the sandbox's own PID namespace: bubblewrap ties itself
    // to the orchestrator as it starts, so a kill in the milliseconds before leaves the
    // sandbox to resume (which ends it by its mark). The wrapper that starts bubblewrap has
    // the program's name in its arguments too, so the name alone is not enough.
    const ours = readlinkSync("/proc/self/ns/pid");
    await waitFor(
      () =>
        survivors(replicate.logPath).some((pid) => {
          try {
            return (
              readlinkSync(`/proc/${pid}/ns/pid`) !== ours &&
              readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("train.mjs")
            );
          } catch {
            return false;
          }
        }),
      30_000,
      "the replicate's program",
    );
    const ledger = Ledger.open(root);
    const owner = ledger.run("k")!.ownerPid!;
    process.kill(owner, "SIGKILL");
    ledger.close();
    expect((await first).signal).toBe("SIGKILL");
    await waitFor(() => !isAlive(replicate.pid!, replicate.pidStart), 5_000, "the replicate's end");
    // The killed orchestrator's process cap (a pids cgroup, where one can be made) is left
    // empty; the next orchestrator removes it.
    const groups = () =>
      existsSync(PIDS)
        ? readdirSync(PIDS).filter((n) => n.startsWith(`autoresearch-${owner}-`))
        : [];
    if (existsSync(PIDS)) expect(groups()).toHaveLength(1);

    const resumed = await runCli(["resume", "-C", root], { env: { TEST_SLEEP_S: "0" } });
    expect(resumed.stderr).toBe("");
    expect(resumed.code).toBe(0);
    // (A process group can linger as a zombie where init reaps nothing; it is counted as ended.)
    expect(resumed.stdout).toContain("recovered: 1 trial(s) continued, 0 recorded as interrupted");
    const after = Ledger.open(root);
    const trials = after.trials(after.run("k")!.id);
    expect(after.replicates(trials[1]!.id).map((r) => r.outcome)).toEqual(["interrupted", "ok"]);
    after.close();
    expect(groups()).toEqual([]);
  });

  it("a run whose reader goes away (`run | head -1`) goes on to its end", async () => {
    const root = quadraticTask({ sleep: 0.3 });
    const child = spawn(
      process.execPath,
      [CLI, "run", "-C", root, "--tag", "p", "--max-trials", "3"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    child.stdout.once("data", () => child.stdout.destroy());
    const code = await new Promise<number | null>((r) => child.on("close", r));
    expect(code).toBe(0);
    const ledger = Ledger.open(root);
    const run = ledger.run("p")!;
    expect(run.status).toBe("finished");
    expect(ledger.trials(run.id).map((t) => t.state)).toEqual(["done", "done", "done"]);
    ledger.close();
  });

  it("a stop with no reader on stdout or stderr (`run 2>&1 | head`, then the stop) still ends the run cleanly", async () => {
    const root = quadraticTask();
    const child = spawn(
      process.execPath,
      [CLI, "run", "-C", root, "--tag", "q", "--max-trials", "3"],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TEST_SLEEP_S: "30" } },
    );
    child.stdout.once("data", () => {
      child.stdout.destroy();
      child.stderr.destroy();
    });
    await waitFor(() => runningReplicate(root, 0), 30_000, "the baseline's replicate");
    child.kill("SIGTERM");
    const code = await new Promise<number | null>((r) => child.on("close", r));
    expect(code).toBe(130);
    const ledger = Ledger.open(root);
    const run = ledger.run("q")!;
    expect([run.status, run.ownerPid]).toEqual(["stopped", null]);
    expect(ledger.trials(run.id).map((t) => [t.state, t.verdict])).toEqual([
      ["done", "interrupted"],
    ]);
    ledger.close();
  });

  it("doctor shows the sandbox a run records when it is not the task file's", async () => {
    const root = quadraticTask();
    const run = (tag: string, ...flags: string[]) =>
      runCli(["run", "-C", root, "-t", tag, "-n", "1", ...flags]);
    expect((await run("a", "--sandbox", "none")).code).toBe(0);
    expect((await run("b")).code).toBe(0);
    const doctor = () => runCli(["doctor", "-C", root]);
    const lines = async () => (await doctor()).stdout.trim().split("\n");
    // The first line is the task file's, which a run without a --sandbox of its own takes.
    const task = (await lines())[0];
    expect(task).toMatch(/^(warning: )?sandbox: (bubblewrap|none)/);
    expect(await lines()).toEqual([
      task,
      "run a: sandbox: none (the run's --sandbox none)",
      "run a: ok",
      "run b: ok",
    ]);
    expect((await doctor()).code).toBe(0);
    const ledger = Ledger.open(root);
    ledger.db.prepare("UPDATE runs SET sandbox = 'jail' WHERE tag = 'a'").run();
    ledger.close();
    // A sandbox resume and try would refuse is a problem, as the other checks' are.
    const unusable = await doctor();
    expect(unusable.stdout.trim().split("\n").slice(1)).toEqual([
      expect.stringMatching(
        /^run a: sandbox: unusable: run "a" records the sandbox mode "jail", which this autoresearch does not know/,
      ),
      "run b: ok",
    ]);
    expect(unusable.code).toBe(1);
  });

  it("doctor fails on a task file whose sandbox this machine cannot use", async () => {
    const root = quadraticTask({
      yaml: [...QUADRATIC_YAML, "sandbox: { binds: [/] }"].join("\n"),
    });
    const doctor = await runCli(["doctor", "-C", root]);
    expect(doctor.stdout).toMatch(
      /^sandbox: unusable: sandbox\.binds: \/ would show the harness's own folder [^\n]+\nno runs yet\n$/,
    );
    expect(doctor.code).toBe(1);
  });

  it("doctor passes a run that records --sandbox none when the task file's bubblewrap cannot run", async () => {
    const root = quadraticTask({ yaml: [...QUADRATIC_YAML, "sandbox: bwrap"].join("\n") });
    // A bubblewrap that fails, as on a machine whose kernel forbids its namespaces.
    const bin = tempDir();
    writeFileSync(join(bin, "bwrap"), "#!/bin/sh\necho 'no namespaces here' >&2\nexit 1\n", {
      mode: 0o755,
    });
    const env = { PATH: `${bin}:${process.env.PATH}` };
    const run = await runCli(["run", "-C", root, "-t", "n", "-n", "1", "--sandbox", "none"], {
      env,
    });
    expect(run.code, run.stderr).toBe(0);
    const doctor = await runCli(["doctor", "-C", root], { env });
    expect(doctor.stdout).toMatch(
      /^sandbox: unusable: bwrap was asked for [^\n]+\nrun n: sandbox: none[^\n]*\nrun n: ok\n$/,
    );
    expect(doctor.code).toBe(0);
  });

  it("a failing command whose stderr has no reader keeps its exit status", async () => {
    const child = spawn(process.execPath, [CLI, "doctor", "-C", join(tempDir(), "missing")], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stderr.destroy();
    child.stdout.destroy();
    const code = await new Promise<number | null>((r) => child.on("close", r));
    expect(code).toBe(3);
  });

  it("resume ends what a killed run left going: a replicate whose pid was never recorded and a child that left its group", async () => {
    const marker = `unrecorded-${process.pid}-${Date.now()}`;
    const root = quadraticTask({
      yaml: [
        "editable: [train.mjs]",
        "run: (setsid sleep 1000 &); node train.mjs",
        "budget: 5s",
        "timeout: 120s",
        "kill_grace: 1s",
        "metric: { name: score, goal: minimize }",
        `env: { TEST_MARK: "${marker}" }`,
        // What resume must find is what the sandbox would have ended with the orchestrator.
        "sandbox: none",
      ].join("\n"),
    });
    const first = runCli(["run", "-C", root, "--tag", "u", "--max-trials", "2"], {
      env: { TEST_SLEEP_S: "60" },
    });
    await waitFor(() => runningReplicate(root, 0), 30_000, "the baseline's replicate");
    const ledger = Ledger.open(root);
    process.kill(ledger.run("u")!.ownerPid!, "SIGKILL");
    ledger.close();
    expect((await first).signal).toBe("SIGKILL");
    // As if the kill had come after the replicate started but before its pid was recorded.
    const db = new Database(join(root, ".autoresearch/ledger.db"));
    db.prepare("UPDATE replicates SET pid = NULL, pid_start = NULL").run();
    db.close();
    // The replicate (shell and node) and the sleep that left its group: orphans doctor finds.
    await waitFor(() => survivors(marker).length >= 3, 10_000, "the orphans");
    const orphans = survivors(marker);
    const doctor = await runCli(["doctor", "-C", root]);
    expect(doctor.code).toBe(1);
    const listed = doctor.stdout.match(
      /replicate 0 is recorded as running; orphaned processes: (.*)/,
    );
    expect(listed?.[1]?.split(", ").map(Number).sort()).toEqual(orphans.sort());

    const resumed = await runCli(["resume", "-C", root, "--max-trials", "1"], {
      env: { TEST_SLEEP_S: "0" },
    });
    expect(resumed.stderr).toBe("");
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain("1 orphaned process group(s) ended");
    expect(survivors(marker)).toEqual([]);
    const after = Ledger.open(root);
    const [baseline] = after.trials(after.run("u")!.id);
    expect(after.replicates(baseline!.id).map((r) => [r.idx, r.outcome])).toEqual([
      [0, "interrupted"],
      [1, "ok"],
    ]);
    after.close();
  }, 120_000);

  it("Ctrl-C ends the running replicate, records it as interrupted and exits with 130; resume runs it again", async () => {
    const root = quadraticTask();
    const running = runCli(["run", "-C", root, "--tag", "c", "--max-trials", "3"], {
      env: { TEST_SLEEP_S: "60" },
    });
    const replicate = await waitFor(() => runningReplicate(root), 30_000, "a running replicate");
    const ledger = Ledger.open(root);
    const ownerPid = ledger.run("c")!.ownerPid!;
    ledger.close();
    process.kill(ownerPid, "SIGINT");
    const result = await running;
    expect(result.code).toBe(130);
    expect(result.stderr).toContain("stopping: ending the running replicate");
    expect(result.stdout).toContain("run stopped: stopped by the user");
    expect(isAlive(replicate.pid!)).toBe(false);
    const after = Ledger.open(root);
    const run = after.run("c")!;
    expect(run).toMatchObject({ status: "stopped", ownerPid: null });
    expect(after.trials(run.id).map((t) => t.verdict)).toEqual(["interrupted"]);
    after.close();
    // Interrupted everywhere: no crash row with a made-up value, and not counted as a trial.
    const tsv = readFileSync(join(root, ".autoresearch/runs/c/results.tsv"), "utf8");
    expect(tsv.trim().split("\n")).toHaveLength(1);
    expect(result.stdout).toMatch(/trials 0 /);

    const resumed = await runCli(["resume", "-C", root]);
    expect(resumed.code).toBe(0);
    const last = Ledger.open(root);
    const trials = last.trials(last.run("c")!.id);
    last.close();
    // The interrupted baseline ran again as trial 0, and --max-trials 3 left two experiments.
    expect(
      trials.map((t) => [t.n, t.baseline, t.verdict === "keep" || t.verdict === "discard"]),
    ).toEqual([
      [0, true, true],
      [1, false, true],
      [2, false, true],
    ]);
    expect(readFileSync(join(root, ".autoresearch/runs/c/results.tsv"), "utf8")).not.toMatch(
      /\tcrash\t/,
    );
  });

  it("a resume can drop a plateau and a budget; --max-usd is the earlier name of --budget-usd", async () => {
    const root = quadraticTask();
    const stored = () => {
      const ledger = Ledger.open(root);
      const run = ledger.run("p")!;
      ledger.close();
      return { maxUsd: run.maxUsd, plateau: JSON.parse(run.stopsJson!).plateau };
    };
    const run = (...flags: string[]) => runCli(["run", "-C", root, "-t", "p", ...flags]);
    const both = await run("--max-usd", "5", "--budget-usd", "5");
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("--max-usd is the earlier name of --budget-usd: give only one");

    const first = await run("-n", "8", "--plateau", "1", "--max-usd", "5");
    expect(first.code).toBe(0);
    expect(first.stdout).toContain("run finished: plateau: no keep in the last 1 trials");
    expect(stored()).toEqual({ maxUsd: 5, plateau: 1 });

    const again = await runCli(["resume", "-C", root, "--plateau", "0", "--budget-usd", "none"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("run finished: reached --max-trials 8");
    expect(stored()).toEqual({ maxUsd: null, plateau: null });
    // One more plain resume has nothing to run, and says what would go on.
    const full = await runCli(["resume", "-C", root]);
    expect(full.stdout).toContain(
      "run p has run the 8 trials of its --max-trials already: give resume a larger --max-trials to go on",
    );
  }, 120_000);

  it("demo runs the whole loop offline and keeps at least one improvement", async () => {
    const dir = join(tempDir(), "demo");
    const result = await runCli(["demo", dir], { timeoutMs: 300_000 });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("run finished: reached --max-trials 8");
    const kept = Number(/kept (\d+)/.exec(result.stdout)?.[1]);
    expect(kept).toBeGreaterThanOrEqual(1);
    const tsv = readFileSync(join(dir, ".autoresearch/runs/demo/results.tsv"), "utf8")
      .trim()
      .split("\n");
    expect(tsv).toHaveLength(9);
    expect(tsv.slice(2).some((line) => line.split("\t")[3] === "keep")).toBe(true);
    expect(sh(dir, "git log --oneline autoresearch/demo").split("\n").length).toBe(kept + 1);
  }, 300_000);
});
