import { TaskFileError, UsageError } from "../../errors.js";
import { resolveSandbox } from "../../executors/sandbox.js";
import type { Ledger } from "../../ledger/ledger.js";
import { type RunRow, TRY_RESEARCHER } from "../../ledger/types.js";
import {
  checkBudget,
  type ResearcherConfig,
  researcherConfig,
  type Traffic,
} from "../../researchers/index.js";
import type { Researcher } from "../../researchers/researcher.js";
import type { Task } from "../../task/task.js";
import { paths } from "../../workspace/layout.js";
import { branchRef, checkClean, headCommit, setRef, trackedFiles } from "../../workspace/repo.js";
import { EditScope } from "../../workspace/scope.js";
import { checkJudgedFiles } from "../../workspace/watch.js";
import {
  checkExecutor,
  executorRecord,
  runContext,
  storedExecutor,
  storedSandbox,
} from "../context.js";
import type { Emit } from "../events.js";
import { mendNotice } from "./checkout.js";
import { withExistingRun } from "./open.js";
import { checkOwner, recover } from "./recover.js";
import {
  finishSession,
  researcherHeader,
  researchersFor,
  type SessionOptions,
  type SessionResult,
  storedStops,
} from "./session.js";
import { checkTaskFiles } from "./start.js";

export interface ResumeOptions extends SessionOptions {
  /** The run to continue; the most recent one when absent. */
  tag?: string;
  /** Replaces the run's own researcher (by default the ones it was started with). */
  researcher?: Researcher;
}

/** Continues a stopped, failed or killed run where it left off. */
export function resumeRun(options: ResumeOptions): Promise<SessionResult> {
  return withExistingRun(options.root, options.tag, "resume", async (task, ledger, run) => {
    const metricChanged = run.metric !== task.metric.name || run.goal !== task.metric.goal;
    const otherMetric = () =>
      new TaskFileError(
        `${task.file}: metric: run "${run.tag}" measures ${run.metric} (${run.goal}) but the task file now says ${task.metric.name} (${task.metric.goal}); start a new run instead`,
      );
    if (metricChanged && ledger.incumbent(run.id) !== null) throw otherMetric();
    checkOwner(run);
    await checkJudgedFiles(task);
    // The --sandbox the run was started with holds until another is given.
    const mode = options.sandbox ?? storedSandbox(run);
    const from = options.sandbox ? "--sandbox" : "the run's --sandbox";
    const sandbox = resolveSandbox(task.sandbox, mode, paths.state(task.root), from);
    const restarted = await restartFromHead(task, ledger, run, options.emit);
    // A failed baseline's fix may be the metric it did not report: taken with the new
    // commit, as its message says. Otherwise values of two metrics would be compared.
    if (metricChanged) {
      if (!restarted) throw otherMetric();
      ledger.setMetric(run.id, task.metric.name, task.metric.goal);
      options.emit({
        type: "notice",
        text: `run ${run.tag} measures ${task.metric.name} (${task.metric.goal}) now, as the task file says (was ${run.metric}, ${run.goal})`,
      });
    }
    const executor = options.executor ?? storedExecutor(run);
    checkExecutor(task, executor);
    // The new limits hold from here; they are recorded once recovery has taken the run.
    const stopsJson = JSON.stringify({ ...storedStops(run), ...options.stops });
    const current: RunRow = {
      ...ledger.runById(run.id)!,
      ...(options.maxTrials !== undefined ? { maxTrials: options.maxTrials } : {}),
      ...(options.maxUsd !== undefined ? { maxUsd: options.maxUsd } : {}),
      stopsJson,
    };
    const researchers = options.researcher
      ? [options.researcher]
      : await storedResearchers(task, current, options.traffic ?? {});
    const header = await researcherHeader(researchers, task.root, task);
    const ctx = runContext(
      task,
      ledger,
      current,
      { ...options, sandbox: mode },
      researchers,
      executor,
    );
    // As they were: a resume refused at the swarm's join puts back the trials it reopened.
    const stopped = ledger.trials(run.id).filter((t) => t.verdict === "interrupted");
    ledger.sessionBegins(run.id, process.pid);
    const recovery = await recover(task, ledger, current, {
      executor: ctx.executor,
      continueTrials: true,
    });
    options.emit({
      type: "run-start",
      tag: run.tag,
      task: task.name,
      metric: task.metric.name,
      resumed: true,
      researcher: current.researcher,
      sandbox: sandbox.summary,
    });
    for (const text of header) options.emit({ type: "notice", text });
    if (recovery.checkout)
      options.emit({ type: "notice", text: mendNotice(run.branch, recovery.checkout) });
    if (recovery.interrupted || recovery.killed || recovery.recovered || recovery.continued.length)
      options.emit({
        type: "recovered",
        interrupted: recovery.interrupted,
        killed: recovery.killed,
        recovered: recovery.recovered,
        continued: recovery.continued.length,
      });
    // A plain resume of a run that has all its trials would end at once, saying only why.
    const limit = current.maxTrials;
    if (!recovery.continued.length && limit !== null && ledger.countTrials(run.id) >= limit)
      options.emit({
        type: "notice",
        text: `run ${run.tag} has run the ${limit} trials of its --max-trials already: give resume a larger --max-trials to go on`,
      });
    // Recorded once nothing has refused the resume (recovery, or the swarm's join).
    let accepted = false;
    try {
      return await finishSession(ctx, options, recovery.continued, () => {
        accepted = true;
        if (options.sandbox) ledger.setSandbox(run.id, options.sandbox);
        if (options.executor) ledger.setExecutor(run.id, JSON.stringify(executorRecord(executor)));
        ledger.setMaxTrials(run.id, current.maxTrials);
        ledger.setMaxUsd(run.id, current.maxUsd);
        ledger.setStops(run.id, stopsJson);
      });
    } catch (error) {
      if (!accepted)
        for (const t of stopped)
          if (ledger.trialById(t.id)?.state === "running")
            ledger.finishTrial(t.id, {
              verdict: "interrupted",
              reason: t.reason ?? "",
              metric: t.metric,
              incumbentMetric: t.incumbentMetric,
              metrics: t.metrics,
              runMs: t.runMs,
              estimate: t.estimate,
            });
      throw error;
    }
  });
}

/** The researchers a run was started with, rebuilt from what its record holds. */
function storedResearchers(task: Task, run: RunRow, traffic: Traffic): Promise<Researcher[]> {
  if (run.researcher === TRY_RESEARCHER)
    throw new UsageError(
      `run "${run.tag}" takes its trials from \`autoresearch try\`, not from a researcher resume could start: check out ${run.branch}, edit, and \`autoresearch try\` (\`autoresearch doctor --fix\` settles what a stop left behind)`,
    );
  if (!run.researcherJson && run.researcher !== "mutate")
    throw new UsageError(
      `run "${run.tag}" was driven by its own researcher (${run.researcher}), which only the program that started it can pass again; resume it from there, or start a new run from the command line`,
    );
  const stored: { configs: ResearcherConfig[]; count: number } = run.researcherJson
    ? JSON.parse(run.researcherJson)
    : { configs: [researcherConfig(task, { researcher: "mutate" })], count: 1 };
  for (const config of stored.configs) checkBudget(config, run.maxUsd);
  return researchersFor(stored.configs, stored.count, traffic);
}

/**
 * A run whose baseline never gave a result starts again from the task's HEAD, where the
 * person committed the fix: the failed baseline stays recorded, a new one runs first.
 */
async function restartFromHead(
  task: Task,
  ledger: Ledger,
  run: RunRow,
  emit: Emit,
): Promise<boolean> {
  const trials = ledger.trials(run.id);
  const failed = trials.some(
    (t) => t.baseline && t.state === "done" && t.verdict !== "keep" && t.verdict !== "interrupted",
  );
  // Only a baseline that ran and failed: one a kill interrupted is read back or continued.
  if (ledger.incumbent(run.id) || !failed || trials.some((t) => t.state !== "done")) return false;
  // An uncommitted fix would be left out: the baseline would fail again at the old commit.
  const scope = new EditScope(task);
  await checkClean(task.root, (path) => scope.isEditable(path));
  const head = await headCommit(task.root);
  if (head === run.baseCommit) return false;
  checkTaskFiles(task, await trackedFiles(task.root));
  await setRef(task.root, branchRef(run.tag), head);
  ledger.setBaseCommit(run.id, head);
  ledger.event(run.id, null, "restarted", { from: run.baseCommit, to: head });
  emit({
    type: "notice",
    text: `run ${run.tag} has no baseline yet: starting again from HEAD ${head.slice(0, 7)} (was ${run.baseCommit.slice(0, 7)})`,
  });
  return true;
}
