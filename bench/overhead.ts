/**
 * The harness's own cost per trial. A task whose replicate is a shell builtin (`true`,
 * then the summary line) runs N trials with the mutate researcher; each trial's wall
 * time is all harness: worktree, proposal, commit, refs, spawn, parse, ledger and
 * results.tsv. The reference is the bare minimum any such harness must do per trial in
 * the same repository: `git worktree add` + spawn of the command + `git worktree remove`.
 *
 *   npm run bench -- overhead [trials]
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { runProcess } from "../src/executors/process.js";
import { probeBwrap, resolveSandbox, sandboxSettings } from "../src/executors/sandbox.js";
import { Ledger } from "../src/ledger/ledger.js";
import { startRun } from "../src/orchestrator/index.js";
import { replicateView } from "../src/workspace/views.js";

const TRIALS = Number(process.argv[2] ?? 60);

function makeTask(): string {
  const root = mkdtempSync(join(tmpdir(), "ar-bench-"));
  writeFileSync(
    join(root, "autoresearch.yaml"),
    [
      "editable: [train.py]",
      "run: 'true && echo --- && echo score: 1'",
      "metric: { name: score, goal: minimize }",
    ].join("\n"),
  );
  const constants = Array.from({ length: 20 }, (_, i) => `CONST_${i} = ${(i + 1) * 0.01}`).join(
    "\n",
  );
  writeFileSync(join(root, "train.py"), `${constants}\n`);
  mkdirSync(join(root, "src"));
  // Some bulk, so that checkouts are not free: 200 files, 2 MB.
  for (let i = 0; i < 200; i++)
    writeFileSync(join(root, "src", `module_${i}.py`), `# module ${i}\n${"x = 1\n".repeat(1700)}`);
  execFileSync(
    "/bin/sh",
    ["-c", "git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm task"],
    { cwd: root },
  );
  return root;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;

function bare(root: string, n: number): number[] {
  const times: number[] = [];
  const head = execFileSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
  for (let i = 0; i < n; i++) {
    const wt = join(root, ".bare", String(i));
    const t0 = performance.now();
    execFileSync("git", ["worktree", "add", "--detach", "--quiet", wt, head], { cwd: root });
    spawnSync("/bin/sh", ["-c", "true && echo --- && echo score: 1"], { cwd: wt });
    execFileSync("git", ["worktree", "remove", "--force", wt], { cwd: root });
    times.push(performance.now() - t0);
  }
  return times;
}

/**
 * The sandbox's cost per replicate: the same replicate-like command spawned through the
 * harness's process runner with no sandbox and in bubblewrap, interleaved, so that the
 * machine's noise falls on both alike.
 */
async function sandboxCost(root: string, n: number) {
  const dir = mkdtempSync(join(tmpdir(), "ar-bench-sandbox-"));
  const worktree = join(root, ".autoresearch", "worktrees", "bench-sandbox");
  mkdirSync(worktree, { recursive: true });
  const settings = { ...sandboxSettings.parse({}), mode: "bwrap" as const };
  const boxed = resolveSandbox(settings);
  const view = replicateView(root, worktree, join(dir, "result.json"), settings);
  const run = async (kind: "none" | "bwrap", i: string) => {
    const result = await runProcess({
      command: "true && echo --- && echo score: 1",
      cwd: worktree,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      logPath: join(dir, `run-${kind}-${i}.log`),
      logLimit: 1_000_000,
      timeoutMs: 30_000,
      killGraceMs: 1000,
      sandbox: kind === "bwrap" ? { sandbox: boxed, view } : null,
    });
    if (result.exitCode !== 0)
      throw new Error(`the ${kind} replicate failed: ${result.spawnError}`);
    return result.durationMs;
  };
  // Interleaved, so that the machine's drift falls on both alike; then in blocks, which
  // on this machine gives the sandbox less: the two orders bracket its cost.
  const times: Record<"none" | "bwrap", number[]> = { none: [], bwrap: [] };
  const blocks: Record<"none" | "bwrap", number[]> = { none: [], bwrap: [] };
  for (let i = 0; i < n; i++)
    for (const kind of ["none", "bwrap"] as const) times[kind].push(await run(kind, `i${i}`));
  for (const kind of ["none", "bwrap"] as const)
    for (let i = 0; i < n; i++) blocks[kind].push(await run(kind, `b${i}`));
  rmSync(dir, { recursive: true, force: true });
  const none = median(times.none);
  const bwrap = median(times.bwrap);
  return {
    replicates: n,
    none_median_ms: Number(none.toFixed(1)),
    bwrap_median_ms: Number(bwrap.toFixed(1)),
    added_ms: Number((bwrap - none).toFixed(1)),
    in_blocks_added_ms: Number((median(blocks.bwrap) - median(blocks.none)).toFixed(1)),
    cap: boxed.cap.kind,
  };
}

/** Runs `command` as the harness did before the log writer: its output straight into a file. */
function direct(command: string, cwd: string, logPath: string): Promise<number> {
  const t0 = performance.now();
  const fd = openSync(logPath, "w");
  const child = spawn("/bin/sh", ["-c", command], { cwd, stdio: ["ignore", fd, fd] });
  closeSync(fd);
  return new Promise((resolve) => child.on("exit", () => resolve(performance.now() - t0)));
}

/**
 * The log writer's cost: per replicate, the same command through the harness's process
 * runner (output through the writer) and spawned straight into a file, interleaved; and a
 * 200 MB flood both ways, with the log's largest size on disk while it ran.
 */
async function logWriterCost(n: number) {
  const dir = mkdtempSync(join(tmpdir(), "ar-bench-writer-"));
  const through = async (command: string, i: string, limit: number) => {
    const t0 = performance.now();
    const result = await runProcess({
      command,
      cwd: dir,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      logPath: join(dir, `writer-${i}.log`),
      logLimit: limit,
      timeoutMs: 120_000,
      killGraceMs: 1000,
    });
    if (result.exitCode !== 0) throw new Error(`the replicate failed: ${result.spawnError}`);
    return performance.now() - t0;
  };
  const quick = "true && echo --- && echo score: 1";
  const times: Record<"writer" | "file", number[]> = { writer: [], file: [] };
  for (let i = 0; i < n; i++) {
    times.writer.push(await through(quick, String(i), 1_000_000));
    times.file.push(await direct(quick, dir, join(dir, `file-${i}.log`)));
  }
  const flood = "yes 'a line of output from a training loop' | head -c 200000000";
  let largest = 0;
  const watch = setInterval(() => {
    try {
      largest = Math.max(largest, statSync(join(dir, "writer-flood.log")).size);
    } catch {}
  }, 5);
  const floodWriter = await through(flood, "flood", 10_000_000);
  clearInterval(watch);
  const floodFile = await direct(flood, dir, join(dir, "file-flood.log"));
  rmSync(dir, { recursive: true, force: true });
  return {
    replicates: n,
    file_median_ms: Number(median(times.file).toFixed(1)),
    writer_median_ms: Number(median(times.writer).toFixed(1)),
    added_ms: Number((median(times.writer) - median(times.file)).toFixed(1)),
    flood_200mb_s: {
      writer: Number((floodWriter / 1000).toFixed(2)),
      file: Number((floodFile / 1000).toFixed(2)),
    },
    flood_largest_log_bytes: largest,
  };
}

const root = makeTask();
try {
  const reference = bare(root, 30);
  await startRun({
    root,
    tag: "bench",
    researcher: "mutate",
    maxTrials: TRIALS,
    signal: new AbortController().signal,
    emit: () => undefined,
  });
  const ledger = Ledger.open(root);
  const trials = ledger.trials(ledger.run("bench")!.id).filter((t) => !t.baseline);
  const wall = trials.map((t) => t.finishedAt! - t.createdAt);
  const spawn = trials.map((t) => ledger.replicates(t.id)[0]?.durationMs ?? 0);
  const commit = trials.map((t) => t.commitMs ?? 0);
  const propose = trials.map((t) => t.proposeMs ?? 0);
  ledger.close();
  const reference2 = bare(root, 30);
  const ref = median([...reference, ...reference2]);
  const sandbox = probeBwrap().ok ? await sandboxCost(root, 100) : "bubblewrap is not usable here";
  const result = {
    date: new Date().toISOString(),
    machine: `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, node ${process.version}`,
    trials: trials.length,
    sandbox_of_trials: resolveSandbox(sandboxSettings.parse({})).summary,
    trial_ms: { median: median(wall), p90: p90(wall) },
    parts_median_ms: {
      propose: median(propose),
      commit: median(commit),
      replicate_process: median(spawn),
    },
    bare_worktree_spawn_ms: { median: ref },
    ratio_to_bare: Number((median(wall) / ref).toFixed(2)),
    sandbox_per_replicate: sandbox,
    log_writer: await logWriterCost(50),
  };
  console.log(JSON.stringify(result, null, 2));
  const out = join(import.meta.dirname, "results", `overhead-${result.date.slice(0, 10)}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`written to ${out}`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
