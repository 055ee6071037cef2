import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import picomatch from "picomatch";
import { TaskFileError, UsageError } from "../../errors.js";
import { resolveSandbox } from "../../executors/sandbox.js";
import { createJudge } from "../../judge/index.js";
import { Ledger } from "../../ledger/ledger.js";
import { checkBudget, checkFlagsUsed, researcherConfig } from "../../researchers/index.js";
import type { Researcher } from "../../researchers/researcher.js";
import { loadTask } from "../../task/load.js";
import type { Task } from "../../task/task.js";
import type { FlagValues } from "../../util/flags.js";
import { git } from "../../workspace/git.js";
import { paths, TASK_FILE } from "../../workspace/layout.js";
import {
  branchName,
  branchRef,
  checkClean,
  checkRepository,
  checkTag,
  excludeStateDir,
  headCommit,
  resolveRef,
  setRef,
  trackedFiles,
} from "../../workspace/repo.js";
import { EditScope } from "../../workspace/scope.js";
import { checkExecutor, executorRecord, runContext } from "../context.js";
import { joinStopped, SwarmLink } from "../swarm.js";
import { DEFAULT_STOPS } from "./loop.js";
import {
  finishSession,
  hostStages,
  researcherHeader,
  researchersFor,
  type SessionOptions,
  type SessionResult,
} from "./session.js";

export interface StartOptions extends SessionOptions {
  tag: string;
  /**
   * Researcher kinds, comma-separated (default: the task file's, else mutate), or an
   * instance of one's own.
   */
  researcher?: string | Researcher;
  /** Researchers of each kind working at once, on one shared ledger. */
  researchers?: number;
  model?: string;
  baseUrl?: string;
  /** Values of the researcher kinds' own flags, by camelCase name. */
  researcherFlags?: FlagValues;
  seed?: number;
  /** Start a new ledger where the task's earlier runs' one is missing or empty (--new-ledger). */
  newLedger?: boolean;
}

/** Starts a new run from the task's HEAD: branch `autoresearch/<tag>`, then trials until a limit. */
export async function startRun(options: StartOptions): Promise<SessionResult> {
  const task = loadTask(options.root);
  checkTag(options.tag);
  await checkRepository(task.root);
  await excludeStateDir(task.root);
  const scope = new EditScope(task);
  await checkClean(task.root, (path) => scope.isEditable(path));
  checkTaskFiles(task, await trackedFiles(task.root));
  const executor = options.executor ?? { kind: "local" };
  checkExecutor(task, executor);
  // Before anything is recorded: `sandbox: bwrap` where it cannot work is refused here.
  const sandbox = resolveSandbox(task.sandbox, options.sandbox, paths.state(task.root));
  const own = typeof options.researcher === "object" ? options.researcher : null;
  const kinds =
    typeof options.researcher === "string"
      ? options.researcher.split(",").map((k) => k.trim())
      : [undefined];
  const configs = own
    ? []
    : kinds.map((kind) =>
        researcherConfig(task, {
          ...options.researcherFlags,
          ...(kind ? { researcher: kind } : {}),
          ...(options.model ? { model: options.model } : {}),
          ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}),
        }),
      );
  checkFlagsUsed(
    configs.map((c) => c.kind),
    options.researcherFlags ?? {},
  );
  for (const config of configs) checkBudget(config, options.maxUsd ?? null);
  const researchers = own
    ? [own]
    : await researchersFor(configs, options.researchers ?? 1, options.traffic ?? {});
  const header = await researcherHeader(researchers, task.root, task);
  const judge = createJudge(task.judge.policy);
  // A new ledger knows no run: a tag taken by an earlier one is refused before it is made.
  if (options.newLedger) await checkTagFree(task.root, options.tag);
  const ledger = Ledger.open(task.root, { verify: true, newLedger: options.newLedger });
  try {
    if (ledger.run(options.tag))
      throw new UsageError(
        `--tag: run "${options.tag}" already exists in this task; continue it with \`autoresearch resume --tag ${options.tag}\` or choose another tag`,
      );
    await checkTagFree(task.root, options.tag);
    const existing = await resolveRef(task.root, branchRef(options.tag));
    if (options.swarm) hostStages(task, options.swarm.stages);
    // A swarm's hosts all start from the commit its init pushed, whatever this checkout holds.
    const head = await headCommit(task.root);
    const base = options.swarm
      ? await SwarmLink.preflight(
          task.root,
          options.swarm,
          readFileSync(join(task.root, TASK_FILE), "utf8"),
          options.tag,
          options.signal,
        ).catch((error: unknown) => {
          throw options.signal.aborted ? joinStopped(options.swarm!.url) : error;
        })
      : head;
    if (base !== head)
      header.push(
        `this checkout's HEAD ${head.slice(0, 7)} is not the swarm's base ${base.slice(0, 7)}: the run starts from the base, as every host's does, not from this HEAD (a clone of the swarm's branch autoresearch-swarm is at the base)`,
      );
    // A branch at the run's base with no run of that tag is this start's, left by a start
    // stopped before it recorded the run: it holds nothing, and is taken as it is.
    if (existing && existing !== base)
      throw new UsageError(
        `--tag: branch ${branchName(options.tag)} already exists; pass another --tag, or delete the branch`,
      );
    await setRef(task.root, branchRef(options.tag), base, existing);
    const run = ledger.createRun({
      tag: options.tag,
      taskName: task.name,
      taskJson: JSON.stringify(task),
      metric: task.metric.name,
      goal: task.metric.goal,
      baseCommit: base,
      branch: branchName(options.tag),
      researcher: own ? own.name : configs.map((c) => c.kind).join(","),
      judge: judge.name,
      seed:
        options.seed ??
        (options.swarm ? hostSeed(task.seed, options.swarm.url, options.tag) : task.seed),
      maxTrials: options.maxTrials ?? null,
      researcherJson: own ? null : JSON.stringify({ configs, count: options.researchers ?? 1 }),
      maxUsd: options.maxUsd ?? null,
      executorJson: JSON.stringify(executorRecord(executor)),
      sandbox: options.sandbox ?? null,
    });
    ledger.setStops(run.id, JSON.stringify({ ...DEFAULT_STOPS, ...options.stops }));
    options.emit({
      type: "run-start",
      tag: run.tag,
      task: task.name,
      metric: task.metric.name,
      resumed: false,
      researcher: run.researcher,
      sandbox: sandbox.summary,
    });
    for (const text of header) options.emit({ type: "notice", text });
    const ctx = runContext(task, ledger, run, options, researchers, executor);
    let accepted = false;
    try {
      return await finishSession(ctx, options, [], () => {
        accepted = true;
      });
    } catch (error) {
      // Refused before anything began (the swarm would not take this host's join): the
      // start leaves no run behind, as one refused before the run was recorded does, so
      // that the same command works once the cause is fixed.
      if (!accepted) {
        ledger.deleteRun(run.id);
        // Only a branch this start made: one the person had (at the base) stays.
        if (!existing)
          await git(task.root, ["update-ref", "-d", branchRef(options.tag), base]).catch(
            () => undefined,
          );
      }
      throw error;
    }
  } finally {
    ledger.close();
  }
}

/**
 * In a swarm, each run's own seed unless one is given: with the task's seed alone every
 * host would propose the same changes in the same order and skip most of them as taken,
 * and so would a host's next run, had the seed been the host's alone.
 */
function hostSeed(seed: number, url: string, tag: string): number {
  const role = decodeURIComponent(new URL(url).username);
  const hash = createHash("sha256").update(`${role}\n${tag}`).digest();
  return seed + (hash.readUInt32BE(0) % 1_000_000);
}

/** The globs must name real files: a typo in `protected` would silently protect nothing. */
/**
 * A new run's tag must not name an earlier run that this ledger lacks (one started afresh
 * with --new-ledger beside it): the new run's trials would be written over that run's
 * folder, and its trial refs moved off the old commits, which git's gc then deletes.
 */
export async function checkTagFree(root: string, tag: string): Promise<void> {
  const folder = paths.run(root, tag);
  const taken = existsSync(folder)
    ? `${folder} holds its records`
    : await git(root, [
        "for-each-ref",
        "--count=1",
        "--format=%(refname)",
        `refs/autoresearch/${tag}/`,
      ]).then((ref) =>
        ref ? `git holds its trials' commits under refs/autoresearch/${tag}/` : null,
      );
  if (taken)
    throw new UsageError(
      `--tag: an earlier run "${tag}" that this ledger does not record is still in the task (${taken}); choose another tag`,
    );
  // Git keeps a branch as a file: none can be named where a folder of branches is.
  const deeper = await git(root, [
    "for-each-ref",
    "--count=1",
    "--format=%(refname:short)",
    `refs/heads/autoresearch/${tag}/`,
  ]);
  if (deeper)
    throw new UsageError(
      `--tag: branch ${deeper} leaves no room for a branch autoresearch/${tag} (git cannot have both); pass another --tag`,
    );
}

export function checkTaskFiles(task: Task, files: string[]): void {
  const scope = new EditScope(task);
  if (!files.some((f) => scope.isEditable(f)))
    throw new TaskFileError(
      `${task.file}: editable: ${JSON.stringify(task.editable)} matches no tracked file the researcher may change`,
    );
  for (const glob of task.protected) {
    const match = picomatch(glob, { dot: true });
    if (!files.some((f) => match(f)))
      throw new TaskFileError(`${task.file}: protected: "${glob}" matches no tracked file`);
  }
}
