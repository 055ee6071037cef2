import { existsSync, readdirSync, readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { resolveSandbox } from "../../executors/sandbox.js";
import { jobState } from "../../executors/slurm-cli.js";
import type { Ledger } from "../../ledger/ledger.js";
import { importedFrom, type RunRow } from "../../ledger/types.js";
import { loadTask } from "../../task/load.js";
import type { Task } from "../../task/task.js";
import { isAlive, markOf, processesWithEnv } from "../../util/proc.js";
import { git, gitRaw } from "../../workspace/git.js";
import { paths } from "../../workspace/layout.js";
import { branchRef, resolveRef, trialRef } from "../../workspace/repo.js";
import { storedSandbox } from "../context.js";
import { runResultsTsv } from "../trial/results.js";
import { describeBehind, followPlan, howToFollow, leftBehind } from "./checkout.js";
import { withLedger } from "./open.js";
import { ownWorktree, recover } from "./recover.js";

/** One thing found wrong with a run's records. */
export interface Problem {
  check: string;
  detail: string;
}

/**
 * Checks a run's invariants, the ones a kill at any moment must not break: every
 * finished replicate recorded once with its log, every trial's commit under its ref, the
 * branch at the incumbent, results.tsv as the ledger says, and — unless an orchestrator
 * is driving it — nothing in flight: no running replicate, process or job, no worktree,
 * no ref lock.
 */
export async function diagnose(task: Task, ledger: Ledger, run: RunRow): Promise<Problem[]> {
  const problems: Problem[] = [];
  const add = (check: string, detail: string) => problems.push({ check, detail });
  const live = run.ownerPid !== null && isAlive(run.ownerPid, run.ownerStart);
  const trials = ledger.trials(run.id);
  // A record of another tool's results: nothing in git or on disk to check it against.
  if (importedFrom(run)) return problems;

  const seen = new Set<string>();
  for (const t of trials) {
    for (const r of ledger.replicates(t.id)) {
      const key = `${t.n}/${r.idx}`;
      if (seen.has(key)) add("replicates", `trial #${t.n} has replicate ${r.idx} twice`);
      seen.add(key);
      if (r.state === "done" && r.outcome !== "interrupted" && !existsSync(r.logPath))
        add("replicates", `trial #${t.n} replicate ${r.idx}: its log ${r.logPath} is missing`);
      if (!live && r.state === "running") {
        // Its recorded process, and any carrying its mark (one that left its group, or all
        // of them when its pid was never recorded).
        const orphans = new Set(processesWithEnv(markOf(r.logPath)));
        if (r.pid && isAlive(r.pid, r.pidStart)) orphans.add(r.pid);
        const job = r.jobId ? (await jobState(r.jobId)).state : null;
        add(
          "in flight",
          `trial #${t.n} replicate ${r.idx} is recorded as running${orphans.size ? `; orphaned process${orphans.size > 1 ? "es" : ""}: ${[...orphans].join(", ")}` : ""}${job ? ` (job ${r.jobId}: ${job})` : ""}`,
        );
      }
    }
    if (!live && t.state !== "done") add("in flight", `trial #${t.n} is still ${t.state}`);
    if (t.commit) {
      const at = await resolveRef(task.root, trialRef(run.tag, t.n));
      if (at !== t.commit)
        add(
          "refs",
          `trial #${t.n}: ${trialRef(run.tag, t.n)} is ${at ?? "missing"}, not ${t.commit}`,
        );
    }
  }

  const incumbent = ledger.incumbent(run.id);
  const expected = incumbent?.commit ?? run.baseCommit;
  const branch = await resolveRef(task.root, branchRef(run.tag));
  if (branch !== expected)
    add(
      "branch",
      `${run.branch} is ${branch ?? "missing"}, but the incumbent (#${incumbent?.n ?? "base"}) is ${expected}`,
    );

  // While a run is driven its checkout follows at the end; after a kill, no one follows.
  const behind = live ? null : await leftBehind(task.root, run.tag);
  if (behind)
    add(
      "checkout",
      `${describeBehind(run.branch, behind)}: ${followPlan(behind) ? "`autoresearch doctor --fix` brings it along" : howToFollow(run.branch, behind)}`,
    );

  const file = paths.results(task.root, run.tag);
  const wanted = runResultsTsv(ledger, run);
  if (!existsSync(file) || readFileSync(file, "utf8") !== wanted)
    add("results.tsv", `${file} differs from the ledger`);

  if (!live) {
    const listed = (await gitRaw(task.root, ["worktree", "list", "--porcelain"])).stdout;
    const dir = paths.worktrees(task.root);
    for (const line of listed.split("\n"))
      if (
        line.startsWith(`worktree ${dir}/`) &&
        ownWorktree(run.tag, line.slice(`worktree ${dir}/`.length)) !== null
      )
        add("worktrees", `${line.slice(9)} is left over`);
    if (existsSync(dir))
      for (const name of readdirSync(dir))
        if (ownWorktree(run.tag, name) !== null && !listed.includes(join(dir, name)))
          add("worktrees", `${join(dir, name)} is left over (not a worktree any more)`);
    const common = await git(task.root, ["rev-parse", "--git-common-dir"]);
    const gitDir = isAbsolute(common) ? common : join(task.root, common);
    const locks = [join(gitDir, "refs", "heads", "autoresearch", `${run.tag}.lock`)];
    const refDir = join(gitDir, "refs", "autoresearch", run.tag, "trials");
    if (existsSync(refDir))
      for (const name of readdirSync(refDir))
        if (name.endsWith(".lock")) locks.push(join(refDir, name));
    for (const lock of locks) if (existsSync(lock)) add("locks", `${lock} is a stale lock`);
  }
  return problems;
}

/**
 * What bounds the task file's replicates on this machine, as a run's header would say it;
 * not usable when a run started without --sandbox would be refused here.
 */
export function sandboxReport(root: string): { summary: string; usable: boolean } {
  const task = loadTask(root);
  try {
    const { summary } = resolveSandbox(task.sandbox, undefined, paths.state(task.root));
    return { summary, usable: true };
  } catch (error) {
    return { summary: `sandbox: unusable: ${unprefixed(error)}`, usable: false };
  }
}

/**
 * What bounds a run's replicates when the run records a --sandbox of its own, which
 * resume, try, noise and promote go on with: a note (null when it takes the task file's),
 * or a problem when this machine cannot use it, since those commands would refuse it.
 */
function runSandboxReport(task: Task, run: RunRow): { note: string | null; problem?: Problem } {
  const from = "the run's --sandbox";
  try {
    const mode = storedSandbox(run);
    if (mode === undefined || mode === task.sandbox.mode) return { note: null };
    const { summary } = resolveSandbox(task.sandbox, mode, paths.state(task.root), from);
    // Only `none` names where it came from.
    return { note: summary.includes(from) ? summary : `${summary}, from ${from} ${mode}` };
  } catch (error) {
    return {
      note: null,
      problem: { check: "sandbox", detail: `unusable: ${unprefixed(error)}` },
    };
  }
}

export interface DoctorReport {
  tag: string;
  live: boolean;
  /** The run's own sandbox, when it is not the task file's (runSandboxReport). */
  sandbox: string | null;
  problems: Problem[];
  /** What `--fix` found before it repaired; empty without `--fix`. */
  fixed: Problem[];
}

/** What `doctor` found in the ledger file itself, and in each run. */
export interface DoctorFindings {
  /** An index that disagrees with its table, as SQLite names it; null when none does. */
  indexes: string | null;
  /** What `--fix` rebuilt (REINDEX) before the check above; null when nothing. */
  indexesFixed: string | null;
  /** Why `--fix` left `indexes` as they are; null when it did not (or was not asked to). */
  indexesLeft: string | null;
  runs: DoctorReport[];
}

/**
 * `autoresearch doctor`: the ledger's indexes, the invariants of each run (or one), and
 * with `fix`, the indexes rebuilt and the same recovery `resume` does — without starting
 * trials — for runs no orchestrator drives.
 */
export function doctorRuns(options: {
  root: string;
  tag?: string;
  fix: boolean;
}): Promise<DoctorFindings> {
  // What the open's check found: a damaged index hides rows from the queries made below.
  let indexes: string | null = null;
  return withLedger(
    options.root,
    async (task, ledger) => {
      let indexesFixed: string | null = null;
      let indexesLeft: string | null = null;
      // A rebuild holds the ledger's write lock longer than a live run waits for it.
      const driven = ledger.runs().find((r) => r.ownerPid && isAlive(r.ownerPid, r.ownerStart));
      if (options.fix && indexes && driven)
        indexesLeft = `not rebuilt while an orchestrator drives run ${driven.tag}, which the rebuild would hold up: stop it, then \`autoresearch doctor --fix\``;
      else if (options.fix && indexes) {
        try {
          ledger.reindex();
          [indexesFixed, indexes] = [indexes, ledger.indexProblem()];
        } catch (error) {
          // Rolled back: the ledger is as it was.
          indexesLeft = `the rebuild failed (${(error as Error).message}): the tables hold records the index forbids (two trials of one number, say), which no rebuild settles; restore the ledger from a backup`;
        }
      }
      // Until it is mended, the runs' records read through it are not to be judged.
      if (indexes) return { indexes, indexesFixed, indexesLeft, runs: [] };
      const reports: DoctorReport[] = [];
      for (const run of ledger.pickAll(options.tag)) {
        const live = run.ownerPid !== null && isAlive(run.ownerPid, run.ownerStart);
        let problems = await diagnose(task, ledger, run);
        let fixed: Problem[] = [];
        if (options.fix && problems.length && !live) {
          await recover(task, ledger, run);
          const found = problems;
          problems = await diagnose(task, ledger, ledger.runById(run.id)!);
          // Only what recovery settled: what it could not is still among the problems (the
          // one checkout and the one branch maybe said otherwise now).
          const single = new Set(["checkout", "branch"]);
          fixed = found.filter(
            (p) =>
              !problems.some(
                (q) => q.check === p.check && (q.detail === p.detail || single.has(p.check)),
              ),
          );
        }
        // After the repair, which cannot change what this machine can run.
        const sandbox = runSandboxReport(task, run);
        if (sandbox.problem) problems.push(sandbox.problem);
        reports.push({ tag: run.tag, live, sandbox: sandbox.note, problems, fixed });
      }
      return { indexes, indexesFixed, indexesLeft, runs: reports };
    },
    { indexesMended: (problem) => (indexes = problem) },
  );
}

/** An error's message without a leading "sandbox: ", which the line that shows it says already. */
const unprefixed = (error: unknown) => (error as Error).message.replace(/^sandbox: /, "");
