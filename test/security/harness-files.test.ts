import { spawn } from "node:child_process";
import { lstatSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { CLI, type CliResult, quadraticTask, tempDir, waitFor } from "../helpers.js";

/**
 * A replicate knows where the harness keeps its files (AR_PROCESS is its log's path,
 * AR_RESULT_FILE its result file's) and runs as the same user: it can put links there.
 * The harness must never follow one, nor read a file whole that never ends.
 */

const TAG = "hf";

/**
 * The quadratic task, whose replicates first run attack.sh with the orchestrator's pid
 * ($PPID of the shell the harness starts) as $1 and $AR_TRIAL telling which trial it is.
 */
function attackTask(attack: string, options: { timeout?: string; logLimit?: number } = {}): string {
  return quadraticTask({
    yaml: [
      "name: quadratic",
      "editable: [train.mjs]",
      "protected: [evaluate.mjs, attack.sh]",
      'run: "sh attack.sh $PPID && node train.mjs"',
      "budget: 1s",
      `timeout: ${options.timeout ?? "20s"}`,
      "kill_grace: 1s",
      "metric: { name: score, goal: minimize }",
      "judge: { seeds: 1 }",
      `log_limit: ${options.logLimit ?? 10_000_000}`,
    ].join("\n"),
    extra: { "attack.sh": `${attack}\n` },
  });
}

/** A file outside the task, with content found nowhere else. */
function outsideFile(dir: string, name: string, bytes: number): { path: string; content: Buffer } {
  const line = `OUTSIDE-${name}-7c1e9a-not-for-the-harness\n`;
  const content = Buffer.from(line.repeat(Math.ceil(bytes / line.length))).subarray(0, bytes);
  const path = join(dir, `${name}.txt`);
  writeFileSync(path, content);
  return { path, content };
}

interface Watched extends CliResult {
  /** The orchestrator's peak resident memory as last seen (VmHWM, kB). */
  peakKb: number;
  ms: number;
}

/** An orchestrator past this (reading /dev/zero whole) is killed before it takes the machine's memory. */
const MEMORY_GUARD_KB = 2_000_000;

/** Runs the built CLI as a subprocess, watching its peak memory while it runs. */
function runWatched(
  args: string[],
  timeoutMs = 50_000,
  onSpawn: (pid: number) => void = () => undefined,
): Promise<Watched> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    if (child.pid) onSpawn(child.pid);
    let stdout = "";
    let stderr = "";
    let peakKb = 0;
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const poll = setInterval(() => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
        peakKb = Math.max(peakKb, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
        if (peakKb > MEMORY_GUARD_KB) child.kill("SIGKILL");
      } catch {}
    }, 20);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code, signal) => {
      clearInterval(poll);
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, peakKb, ms: Date.now() - started });
    });
  });
}

const runArgs = (root: string, trials: number) => [
  "run",
  "-C",
  root,
  "--tag",
  TAG,
  "-r",
  "mutate",
  "--lookahead",
  "0",
  "--max-trials",
  String(trials),
];

function run(root: string, trials: number): Promise<Watched> {
  return runWatched(runArgs(root, trials));
}

function trialOf(root: string, n: number) {
  const ledger = Ledger.open(root);
  try {
    const run = ledger.run(TAG)!;
    const trial = ledger.trials(run.id).find((t) => t.n === n)!;
    return { trial, replicates: ledger.replicates(trial.id) };
  } finally {
    ledger.close();
  }
}

/** Every file under `dir` (links listed, never followed). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return lstatSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** The harness's files (ledger, results.tsv, trial folders) that hold `text`, or are links. */
function leaks(root: string, text: string): string[] {
  return filesUnder(join(root, ".autoresearch")).filter(
    (f) => lstatSync(f).isSymbolicLink() || readFileSync(f, "latin1").includes(text),
  );
}

const links = (dir: string) => filesUnder(dir).filter((f) => lstatSync(f).isSymbolicLink());

const trialDir = (root: string, n: number) =>
  join(root, ".autoresearch/runs", TAG, "trials", `${n}`);

describe("the harness's files in a trial's folder", () => {
  it("a log replaced by a link to a file outside: that file is neither cut nor read, and the trial is tampered", async () => {
    const outside = outsideFile(tempDir(), "log-target", 165_000);
    const root = attackTask(
      // Trial 1 only; it sleeps so that the log is capped while it runs, as well as after.
      `[ "$AR_TRIAL" = 1 ] || exit 0\nln -sf "${outside.path}" "$AR_PROCESS"\nsleep 2.5`,
      { logLimit: 4000 },
    );
    const result = await run(root, 2);
    expect(result.signal).toBeNull();
    expect(result.code, result.stderr).toBe(0);

    expect(readFileSync(outside.path).equals(outside.content)).toBe(true);
    expect(leaks(root, "OUTSIDE-log-target")).toEqual([]);
    const { trial, replicates } = trialOf(root, 1);
    expect(trial.verdict).toBe("tampered");
    expect(trial.reason).toContain(`replaced its log with a symbolic link to ${outside.path}`);
    expect(trial.reason).toContain("nothing outside the trial's folder was read or changed");
    expect(replicates[0]!.reason).toContain("replaced its log with a symbolic link");
    // What reads the log later (a researcher's brief, the report) finds the harness's note.
    const log = join(trialDir(root, 1), "run.log");
    expect(lstatSync(log).isFile()).toBe(true);
    expect(readFileSync(log, "utf8")).toContain("replaced its log with a symbolic link");
    expect(trialOf(root, 0).trial.verdict).toBe("keep");
  });

  it("links planted for the harness's later writes (the next trial's log, metrics.json's temporary file, a timeout note) change nothing outside", async () => {
    const dir = tempDir();
    const nextLog = outsideFile(dir, "next-log", 5_000);
    const metrics = outsideFile(dir, "metrics-tmp", 5_000);
    const noted = outsideFile(dir, "noted", 500);
    const root = attackTask(
      [
        'here=$(dirname "$AR_PROCESS")',
        'if [ "$AR_TRIAL" = 1 ]; then',
        '  mkdir -p "$here/../2"',
        `  ln -s "${nextLog.path}" "$here/../2/run.log"`,
        `  ln -s "${metrics.path}" "$here/metrics.json.$1.tmp"`,
        "fi",
        // Trial 2 links its log, then runs past its timeout: the harness notes why it ended it.
        `if [ "$AR_TRIAL" = 2 ]; then ln -sf "${noted.path}" "$AR_PROCESS"; sleep 30; fi`,
        "exit 0",
      ].join("\n"),
      { timeout: "3s" },
    );
    const result = await run(root, 3);
    expect(result.signal).toBeNull();
    expect(result.code, result.stderr).toBe(0);

    const changed = [nextLog, metrics, noted].filter(
      (f) => !readFileSync(f.path).equals(f.content),
    );
    expect(changed.map((f) => f.path)).toEqual([]);
    expect(leaks(root, "OUTSIDE-")).toEqual([]);
    const first = trialOf(root, 1).trial;
    expect(first.verdict).toBe("tampered");
    expect(first.reason).toContain(`metrics.json.`);
    expect(first.reason).toContain(`a symbolic link to ${metrics.path}`);
    const second = trialOf(root, 2);
    expect(second.trial.verdict).toBe("tampered");
    expect(second.trial.reason).toContain(`replaced its log with a symbolic link to ${noted.path}`);
    expect(second.replicates[0]!.outcome).toBe("timeout");
    expect(second.replicates[0]!.reason).toContain("replaced its log with a symbolic link");
  });

  it("a log replaced by a link while no orchestrator watched: resume neither cuts nor reads what it points to", async () => {
    const outside = outsideFile(tempDir(), "unwatched", 165_000);
    const root = attackTask(
      `[ "$AR_TRIAL" = 1 ] || exit 0\nln -sf "${outside.path}" "$AR_PROCESS"\nsleep 4`,
      { logLimit: 4000 },
    );
    let orchestrator = 0;
    const killed = runWatched(runArgs(root, 2), 50_000, (pid) => {
      orchestrator = pid;
    });
    // The orchestrator dies while the replicate runs, after it put the link in place.
    const log = join(trialDir(root, 1), "run.log");
    await waitFor(
      () => {
        try {
          return lstatSync(log).isSymbolicLink();
        } catch {
          return false;
        }
      },
      40_000,
      "the link",
    );
    process.kill(orchestrator, "SIGKILL");
    expect((await killed).signal).toBe("SIGKILL");
    const resumed = await runWatched(["resume", "-C", root, "--tag", TAG]);
    expect(resumed.signal).toBeNull();
    expect(resumed.code, resumed.stderr).toBe(0);

    expect(readFileSync(outside.path).equals(outside.content)).toBe(true);
    expect(leaks(root, "OUTSIDE-unwatched")).toEqual([]);
    const { trial, replicates } = trialOf(root, 1);
    expect(trial.verdict).toBe("tampered");
    expect(trial.reason).toContain(`replaced its log with a symbolic link to ${outside.path}`);
    expect(replicates.map((r) => r.reason)).toContain(trial.reason);
  });

  it("a result file linked to /dev/zero is not read: the run finishes and the replicate says why", async () => {
    const root = attackTask(`[ "$AR_TRIAL" = 1 ] || exit 0\nln -sf /dev/zero "$AR_RESULT_FILE"`);
    const result = await run(root, 2);
    expect(result.signal).toBeNull();
    expect(result.code, result.stderr).toBe(0);

    const { trial, replicates } = trialOf(root, 1);
    expect(replicates[0]!.outcome).toBe("bad_metric");
    expect(replicates[0]!.reason).toBe(
      "the replicate replaced its result file (AR_RESULT_FILE) with a symbolic link to /dev/zero; it was not read",
    );
    expect(trial.verdict).toBe("tampered");
    expect(trial.reason).toBe(replicates[0]!.reason);
    expect(links(trialDir(root, 1))).toEqual([]);
  });

  it("a huge result file is not read: the run stays quick and small, and the replicate says why", async () => {
    const attack = (bytes: number) =>
      `[ "$AR_TRIAL" = 1 ] || exit 0\nhead -c ${bytes} /dev/zero | tr '\\0' ' ' > "$AR_RESULT_FILE"`;
    // The same run with a small result file: how much memory the orchestrator needs anyway.
    const small = await run(attackTask(attack(50)), 2);
    expect(small.code, small.stderr).toBe(0);
    const root = attackTask(attack(50_000_000));
    const result = await run(root, 2);
    expect(result.signal).toBeNull();
    expect(result.code, result.stderr).toBe(0);

    const { replicates } = trialOf(root, 1);
    expect(replicates[0]!.outcome).toBe("bad_metric");
    expect(replicates[0]!.reason).toBe(
      "the result file (AR_RESULT_FILE) is 50000000 bytes, more than the 1000000 the harness reads; it was not read",
    );
    // Reading it whole would take its size twice over (the bytes, then the string).
    expect(result.peakKb - small.peakKb).toBeLessThan(30_000);
    expect(result.ms).toBeLessThan(small.ms + 15_000);
  });
});
