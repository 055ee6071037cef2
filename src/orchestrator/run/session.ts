import { readFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../../errors.js";
import type { SandboxMode } from "../../executors/sandbox.js";
import type { Ledger } from "../../ledger/ledger.js";
import type { RunRow } from "../../ledger/types.js";
import type { MetricRules } from "../../metrics/spec.js";
import {
  createResearcher,
  preflight,
  type ResearcherConfig,
  type Traffic,
  trafficFetch,
} from "../../researchers/index.js";
import type { Researcher } from "../../researchers/researcher.js";
import { retry, SwarmUnreachableError, withoutPassword } from "../../swarm/index.js";
import type { Task } from "../../task/task.js";
import { monotonic } from "../../util/clock.js";
import { TASK_FILE } from "../../workspace/layout.js";
import { branchRef, resolveRef } from "../../workspace/repo.js";
import type { EditRules } from "../../workspace/scope.js";
import type { ExecutorOption, RunContext } from "../context.js";
import type { Emit } from "../events.js";
import {
  joinStopped,
  promotionRule,
  remoteWithoutPassword,
  type SwarmChoice,
  SwarmLink,
} from "../swarm.js";
import { flushingAfter } from "../trial/results.js";
import type { TrialJob } from "../trial/trial.js";
import { markFollowing, mendCheckout, mendNotice } from "./checkout.js";
import { DEFAULT_STOPS, drive, endRun, type Limits, type LoopEnd, type Stops } from "./loop.js";
import { type RunSummary, summarize } from "./summary.js";

/** What `run` and `resume` share: the limits, where replicates run, the stop signal. */
export interface SessionOptions {
  root: string;
  /** Total trials of the run; for resume, undefined keeps the run's own limit. */
  maxTrials?: number | null;
  maxHours?: number | null;
  /**
   * Dollars, researchers' spending plus GPU time at `stops.gpuHourUsd`, after which no new
   * trial starts; for resume as maxTrials.
   */
  maxUsd?: number | null;
  /** Stop rules; for resume, what is given replaces the run's own. */
  stops?: Partial<Stops>;
  /** Where replicates run (a kind and its flags, or an executor); for resume, undefined keeps the run's own. */
  executor?: ExecutorOption;
  /** Replaces the task file's sandbox mode for this session (--sandbox). */
  sandbox?: SandboxMode;
  /** Trials proposed ahead of free slots (default: one per slot, none for mutate). */
  lookahead?: number;
  /** Replicates after which no new trial starts, for this session. */
  maxReplicates?: number | null;
  /** Record the provider traffic to a file, or replay it from one. */
  traffic?: Traffic;
  /** The swarm this run takes part in; for resume, undefined keeps the run's own. */
  swarm?: SwarmChoice;
  signal: AbortSignal;
  emit: Emit;
}

export interface SessionResult extends LoopEnd {
  summary: RunSummary;
}

/**
 * `count` researchers of each configured kind, sharing the recorded or replayed traffic,
 * once each kind has shown it can work (its provider answers, its program is installed).
 */
export async function researchersFor(
  configs: ResearcherConfig[],
  count: number,
  traffic: Traffic,
): Promise<Researcher[]> {
  const fetch = trafficFetch(traffic);
  const shared = { ...(fetch ? { fetch } : {}), replaying: traffic.replay !== undefined };
  const researchers: Researcher[] = [];
  for (let i = 0; i < count; i++)
    for (const config of configs) researchers.push(createResearcher(config, shared));
  await preflight(configs, shared);
  return researchers;
}

/**
 * What each researcher will search, for the run's header, one set of lines per kind;
 * throws (before anything is recorded) when one has nothing to work on.
 */
export async function researcherHeader(
  researchers: Researcher[],
  root: string,
  task: EditRules & MetricRules,
): Promise<string[]> {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const r of researchers) {
    if (!r.prepare || seen.has(r.name)) continue;
    seen.add(r.name);
    lines.push(...(await r.prepare(root, task)));
  }
  return lines;
}

/**
 * Joins the run's swarm, if any, then drives the run to its limits and summarises it.
 * `accepted` is called once nothing can refuse the session (a resume records then what it
 * was given, so that a refused one leaves the run as it was).
 */
export async function finishSession(
  ctx: RunContext,
  options: SessionOptions,
  resumed: TrialJob[],
  accepted: () => void = () => undefined,
): Promise<SessionResult> {
  const run = ctx.ledger.runById(ctx.run.id)!;
  const stored = storedSwarm(ctx.ledger, run);
  if (options.swarm && !stored && ctx.ledger.countTrials(run.id) > 0)
    throw new UsageError(
      `--swarm: run ${run.tag} was not started in a swarm and cannot join one; start a new run with \`autoresearch run --swarm …\``,
    );
  // What --swarm gives again (the URL, say) keeps the rest of what the run joined with.
  const swarm = options.swarm ? { ...stored, ...options.swarm } : stored;
  if (swarm) hostStages(ctx.task, swarm.stages);
  // A URL the run has not joined through is recorded once it works: a mistyped one must
  // not become the URL that every later resume waits on.
  const newUrl =
    stored !== null && swarm !== null && withoutPassword(swarm.url) !== withoutPassword(stored.url);
  // Otherwise recorded before joining, so that a run killed during its first join resumes
  // in the swarm (a new run whose first join fails is not kept: see startRun).
  if (options.swarm && swarm && !newUrl) recordSwarm(ctx.ledger, run, swarm);
  if (swarm) {
    const open = () =>
      SwarmLink.open({
        choice: swarm,
        root: ctx.task.root,
        taskFile: readFileSync(join(ctx.task.root, TASK_FILE), "utf8"),
        ledger: ctx.ledger,
        run,
        slots: ctx.executor.slots.length,
        gpusPerReplicate: ctx.task.resources.gpus,
        stages: hostStages(ctx.task, swarm.stages),
        promotion: promotionRule(ctx.task),
        emit: options.emit,
        signal: options.signal,
      });
    // A run that has joined before, through this URL, has a URL that worked: an
    // unreachable database is an outage to wait out (a lab's machines restarting
    // together). A first join, or one through a new URL, fails at once, so that a
    // mistyped address is said rather than waited on.
    const joinedBefore = stored !== null && !newUrl && ctx.ledger.countTrials(run.id) > 0;
    try {
      ctx.swarm = joinedBefore
        ? await waitingOut(open, options.emit, options.signal)
        : await open();
    } catch (error) {
      // A first join that a stop cut short (a hung database is not waited on) began
      // nothing: undone by the caller, it ends as a stop.
      if (!joinedBefore && options.signal.aborted) throw joinStopped(swarm.url);
      // Ctrl-C while waiting out an outage is a stop like any other, nothing begun; a
      // refusal is said as itself.
      const waitStopped =
        joinedBefore && options.signal.aborted && error instanceof SwarmUnreachableError;
      if (!waitStopped) throw error;
      const end = endRun(ctx, { status: "stopped", reason: "stopped by the user" });
      return { ...end, summary: summarize(ctx.task.root, ctx.ledger, ctx.ledger.runById(run.id)!) };
    }
    if (newUrl) recordSwarm(ctx.ledger, run, swarm);
    options.emit({
      type: "notice",
      text: `swarm: host ${ctx.swarm.host} (${ctx.swarm.hardwareClass}) joined ${ctx.swarm.where}; the line is at version ${ctx.swarm.line.version}`,
    });
  }
  // Nothing refuses the session any more: what it was given is recorded, then driven.
  accepted();
  const recorded = ctx.ledger.runById(run.id)!;
  const limits: Limits = {
    stops: storedStops(recorded),
    since: Date.now(),
    maxTrials: recorded.maxTrials,
    deadline: options.maxHours ? monotonic() + options.maxHours * 3600_000 : null,
    maxUsd: recorded.maxUsd,
    maxReplicates: options.maxReplicates ?? null,
    resumed,
    ...(options.lookahead !== undefined ? { lookahead: options.lookahead } : {}),
  };
  const cpuOnly = ctx.executor.slots.every((slot) => !slot.gpus?.length);
  if (ctx.task.overlap && ctx.executor.kind === "local" && cpuOnly)
    options.emit({
      type: "notice",
      text: "overlap: true on CPU slots: the next replicate starts on the cores of the one that trains, which slows it and can move its metric; set `overlap: false` in the task file for a CPU run",
    });
  // A checkout on the run's branch (as `try` leaves it, or checked out while the run goes)
  // sees its keeps, as after a checkout; the record says where the branch was, should this
  // process be killed before it follows.
  const tip = await resolveRef(ctx.task.root, branchRef(run.tag));
  if (tip) markFollowing(ctx.task.root, run.tag, tip);
  const end = await flushingAfter(
    ctx.results,
    drive(ctx, limits).finally(() =>
      Promise.all([...ctx.researchers.map((r) => r.close?.()), ctx.swarm?.close()]),
    ),
  );
  const mended = await mendCheckout(ctx.task.root, run.tag, true);
  if (mended?.state === "left")
    options.emit({ type: "notice", text: mendNotice(run.branch, mended) });
  return { ...end, summary: summarize(ctx.task.root, ctx.ledger, ctx.ledger.runById(ctx.run.id)!) };
}

/** `open` again with backoff while the swarm's database is unreachable, said once. */
function waitingOut<T>(open: () => Promise<T>, emit: Emit, signal: AbortSignal): Promise<T> {
  return retry(open, {
    baseDelayMs: 1000,
    maxDelayMs: 30_000,
    signal,
    onRetry: (error, attempt) => {
      if (attempt === 1)
        emit({
          type: "notice",
          text: `swarm: ${error.message}; waiting for it with backoff (Ctrl-C stops; \`autoresearch resume\` later goes on)`,
        });
    },
  });
}

/**
 * The stages a host can run: those `--stages` names (the search stage always, since every
 * host searches), or all of the task's. An unknown name is refused, with the task's listed.
 */
export function hostStages(task: Task, named: string[] | undefined): string[] {
  const all = task.stages.map((s) => s.name);
  if (!named) return all;
  const unknown = named.find((n) => !all.includes(n));
  if (unknown !== undefined)
    throw new UsageError(
      `--stages: the task has no stage "${unknown}"; its stages are ${all.join(", ")} (the task file's \`stages\`)`,
    );
  return all.filter((n, i) => i === 0 || named.includes(n));
}

/**
 * The swarm a run joined, as recorded without its password (which comes from PGPASSWORD
 * or ~/.pgpass on resume, or from --swarm given again); null for a run of its own.
 */
export function storedSwarm(ledger: Ledger, run: RunRow): SwarmChoice | null {
  const joined = ledger
    .events(run.id)
    .filter((e) => e.kind === "swarm")
    .at(-1);
  return joined ? (joined.data as SwarmChoice) : null;
}

function recordSwarm(ledger: Ledger, run: RunRow, choice: SwarmChoice): void {
  ledger.event(run.id, null, "swarm", {
    ...choice,
    url: withoutPassword(choice.url),
    ...(choice.remote ? { remote: remoteWithoutPassword(choice.remote) } : {}),
  });
}

/** The run's stop rules; runs made before they were kept get the defaults. */
export function storedStops(run: RunRow): Stops {
  return { ...DEFAULT_STOPS, ...(run.stopsJson ? JSON.parse(run.stopsJson) : {}) };
}
