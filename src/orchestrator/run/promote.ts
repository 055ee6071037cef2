import { setMaxListeners } from "node:events";
import { join } from "node:path";
import { UsageError } from "../../errors.js";
import { mean, pool, sd } from "../../judge/stats.js";
import {
  changeName,
  promotions,
  type TransferRow,
  type TransferTable,
} from "../../ledger/promotions.js";
import { ADOPTER, type TrialRow } from "../../ledger/types.js";
import { improvement } from "../../metrics/compare.js";
import type { Goal } from "../../metrics/spec.js";
import type { PromotionJob } from "../../swarm/index.js";
import { writeJson } from "../../util/fs.js";
import { oneLine } from "../../util/text.js";
import { git } from "../../workspace/git.js";
import { paths } from "../../workspace/layout.js";
import { addWorktree, commitWorktree, removeWorktree, revertIn } from "../../workspace/worktree.js";
import type { RunContext } from "../context.js";
import { noiseFloor } from "../trial/judging.js";
import { evaluate, type Subject } from "./evaluate.js";
import { type ToolOptions, withRun } from "./open.js";

/** A kept change on the incumbent's line, as the transfer table names it. */
type Change = Pick<TransferRow, "n" | "host" | "run" | "title" | "found"> & { commit: string };

/**
 * The kept changes on the incumbent's line, oldest first: every commit on the first-parent
 * path from the run's base to the incumbent is one keep. In a swarm that path holds the
 * other hosts' keeps too, one line version each, also where this host adopted several at
 * once; the swarm says who kept them and by how much.
 */
async function lineChanges(ctx: RunContext, incumbent: string): Promise<Change[]> {
  const log = await git(ctx.task.root, [
    "log",
    "--first-parent",
    "--reverse",
    "--format=%H %s",
    `${ctx.run.baseCommit}..${incumbent}`,
  ]);
  // A commit with an empty message ends its line at the hash.
  const commits = log
    .split("\n")
    .map((line) => /^([0-9a-f]+) ?(.*)$/.exec(line))
    .flatMap((m) => (m ? [{ sha: m[1]!, subject: m[2]! }] : []));
  const own = new Map<string, TrialRow>();
  for (const t of ctx.ledger.trials(ctx.run.id))
    if (t.verdict === "keep" && !t.baseline && t.commit && t.researcher !== ADOPTER)
      own.set(t.commit, t);
  const others = ctx.swarm
    ? await ctx.swarm.keepsOf(commits.filter((c) => !own.has(c.sha)).map((c) => c.sha))
    : new Map();
  const goal = ctx.task.metric.goal;
  return commits.map(({ sha, subject }): Change => {
    const t = own.get(sha);
    if (t)
      return {
        commit: sha,
        n: t.n,
        title: t.title ?? subject,
        found: t.estimate?.mean ?? gainOver(t.metric, t.incumbentMetric, goal),
      };
    const keep = others.get(sha);
    if (!keep) return { commit: sha, n: null, title: oneLine(subject), found: null };
    // Another host's words: one printable line, as the run's own titles are.
    return {
      commit: sha,
      n: keep.trial.localN,
      host: keep.trial.host,
      ...(keep.trial.runTag ? { run: keep.trial.runTag } : {}),
      title: oneLine(keep.trial.title ?? subject),
      found: gainOver(keep.trial.metric, keep.parentMetric, goal),
    };
  });
}

/**
 * The evaluation of the incumbent without a change: by this run's trial number, else by
 * the commit (other runs' numbers repeat, and host names can differ by a character that
 * a folder name cannot hold).
 */
const ablation = (c: Change) =>
  c.host === undefined && c.n !== null ? `without #${c.n}` : `without ${c.commit.slice(0, 12)}`;

/** A commit holding the incumbent without one kept change, or null when that conflicts. */
async function without(
  ctx: RunContext,
  incumbent: string,
  change: Change,
  id: number,
): Promise<string | null> {
  const name = changeName(change);
  const worktree = `${paths.worktree(ctx.task.root, ctx.run.tag, 0)}-p${id}-revert-${change.commit.slice(0, 12)}`;
  await addWorktree(ctx.task.root, worktree, incumbent);
  try {
    if (!(await revertIn(worktree, change.commit))) return null;
    return await commitWorktree(worktree, incumbent, `without ${name}: ${change.title}\n`);
  } finally {
    await removeWorktree(ctx.task.root, worktree);
  }
}

/**
 * Evaluates the stacked incumbent against the baseline at a larger stage, and each kept
 * change by leaving it out of the incumbent there (leave-one-out), all with the stage's
 * seeds on the run's slots. Produces the transfer table: each change's effect where it was
 * found and at the stage, whether it transfers, and whether the effects add up.
 */
export async function promote(
  ctx: RunContext,
  stageName?: string,
  seedsOverride?: number,
): Promise<TransferTable> {
  const { task, run, ledger } = ctx;
  const search = task.stages[0]!;
  const stage = stageName ? task.stages.find((s) => s.name === stageName) : task.stages[1];
  if (!stage)
    throw new UsageError(
      stageName
        ? `--stage: no stage "${stageName}"; stages: ${task.stages.map((s) => s.name).join(", ")}`
        : `${task.file}: stages: there is no stage after "${search.name}" to promote to; add one`,
    );
  if (stage === search)
    throw new UsageError(
      `--stage: "${search.name}" is the search stage, where the changes were found; promote to a later one: ${task.stages
        .slice(1)
        .map((s) => s.name)
        .join(", ")}`,
    );
  const incumbent = ledger.incumbent(run.id);
  if (!incumbent?.commit)
    throw new UsageError(`run "${run.tag}" has no incumbent yet: nothing to promote`);
  const count = seedsOverride ?? stage.seeds;
  const seeds = Array.from({ length: count }, (_, i) => run.seed + i);
  const id = promotions.create(ledger, {
    runId: run.id,
    stage: stage.name,
    incumbentN: incumbent.n,
    incumbentCommit: incumbent.commit,
    seeds: count,
  });
  ctx.emit({ type: "promotion-start", id, stage: stage.name, incumbent: incumbent.n });
  try {
    const changes = await lineChanges(ctx, incumbent.commit);
    const ablations = await Promise.all(changes.map((c) => without(ctx, incumbent.commit!, c, id)));
    const subjects: Subject[] = [
      { label: "baseline", ablatedN: null, commit: run.baseCommit },
      { label: "incumbent", ablatedN: null, commit: incumbent.commit },
      ...changes.flatMap((c, i) =>
        ablations[i]
          ? [
              {
                // By commit: names of other runs' trials can repeat.
                label: ablation(c),
                // Numbers name this run's trials only.
                ablatedN: c.host === undefined ? c.n : null,
                commit: ablations[i]!,
              },
            ]
          : [],
      ),
    ];
    // Subjects of one tree are measured once: with a single change, leaving it out gives
    // the baseline's tree again, and a stage's seeds are its dearest runs.
    const trees = await Promise.all(
      subjects.map((s) => git(task.root, ["rev-parse", `${s.commit}^{tree}`])),
    );
    const unique = [...new Set(trees)];
    const measured = unique.map((tree) => subjects[trees.indexOf(tree)]!);
    // One evaluation that fails ends the others: the promotion has failed.
    const failed = new AbortController();
    const signal = AbortSignal.any([ctx.signal, failed.signal]);
    setMaxListeners(0, signal);
    const settled = await Promise.allSettled(
      measured.map((s) =>
        evaluate({ ...ctx, signal }, id, s, stage, seeds).catch((error) => {
          failed.abort();
          throw error;
        }),
      ),
    );
    const failure = settled.find((r) => r.status === "rejected");
    if (failure) throw failure.reason;
    const results = settled.map((r) => (r as PromiseFulfilledResult<number[]>).value);
    const byTree = new Map(unique.map((tree, j) => [tree, results[j]!]));
    const means = new Map(
      subjects.map((s, i) => {
        const values = byTree.get(trees[i]!)!;
        return [s.label, values.length ? mean(values) : null];
      }),
    );
    const table = transferTable(ctx, stage.name, count, changes, means, results);
    // A stop cuts the evaluations short: what they measured is no table.
    if (ctx.signal.aborted) {
      const why = typeof ctx.signal.reason === "string" ? ctx.signal.reason : "";
      promotions.finish(
        ledger,
        id,
        "failed",
        `stopped before it finished${why && `: ${why}`}`,
        table,
      );
      return table;
    }
    if (table.incumbent === null)
      throw new Error(
        `no evaluation of the incumbent at stage ${stage.name} gave a value: see the logs in ${join(paths.run(task.root, run.tag), "promotions", String(id))}`,
      );
    writeJson(
      join(paths.run(task.root, run.tag), "promotions", String(id), "transfer.json"),
      table,
    );
    promotions.finish(ledger, id, "done", null, table);
    ctx.emit({ type: "promotion-end", id, stage: stage.name, table });
    return table;
  } catch (error) {
    promotions.finish(ledger, id, "failed", (error as Error).message, null);
    throw error;
  }
}

/** How far `a` improves on `b` towards the goal; null where either is unknown. */
function gainOver(a: number | null | undefined, b: number | null | undefined, goal: Goal) {
  return a == null || b == null ? null : improvement(a, b, goal);
}

function transferTable(
  ctx: RunContext,
  stage: string,
  seeds: number,
  changes: Change[],
  means: Map<string, number | null>,
  arms: number[][],
): TransferTable {
  const goal = ctx.task.metric.goal;
  const incumbent = means.get("incumbent") ?? null;
  const rows: TransferRow[] = changes.map((c) => {
    const atStage = gainOver(incumbent, means.get(ablation(c)), goal);
    const isolable = means.has(ablation(c));
    return { ...c, atStage, transfers: atStage === null ? null : atStage > 0, isolable };
  });
  const stacked = gainOver(incumbent, means.get("baseline"), goal);
  const measured = rows.filter((r) => r.atStage !== null);
  const sum = measured.length ? measured.reduce((a, r) => a + r.atStage!, 0) : null;
  // Within noise: two standard errors of stacked − sum. With m changes,
  // stacked − sum = B − ΣWᵢ + (m − 1)·I over means of `seeds` values each, so its variance
  // is s²/seeds · (1 + m + (m − 1)²). s is the spread of one evaluation: pooled over the
  // replicates of each arm (the arms differ by the effects being tested, so their values
  // taken together would count the effects as noise), else the run's noise floor.
  const pooled = pool(
    arms.flatMap((values) => {
      const s = sd(values);
      return s === null ? [] : [{ sd: s, df: values.length - 1 }];
    }),
  );
  const floor = noiseFloor(ctx)?.sd ?? null;
  const spread = pooled?.sd ?? floor;
  const from = pooled
    ? `pooled within arms (${pooled.df} degrees of freedom)`
    : floor !== null
      ? "the run's noise floor"
      : "unknown";
  const m = measured.length;
  const tolerance = spread === null ? null : 2 * spread * Math.sqrt((1 + m + (m - 1) ** 2) / seeds);
  // A change not taken out on its own is in the stacked effect but in no single one.
  const additive =
    stacked === null || sum === null || tolerance === null || m < rows.length
      ? null
      : Math.abs(stacked - sum) <= tolerance;
  return {
    metric: ctx.task.metric.name,
    stage,
    seeds,
    baseline: means.get("baseline") ?? null,
    incumbent,
    stacked,
    sum,
    additive,
    test: { spread, from, tolerance },
    rows,
  };
}

/**
 * A promotion the swarm asked for and this host took: run here on exactly the job's head,
 * its transfer table (or why it failed) recorded in the swarm for every host. A head this
 * host no longer stands on, or a promotion stopped midway, is handed back (or, with the
 * database away, left to its lease) for another host or this one resumed to take again.
 * One whose lease this host lost stops, and is left to whichever host holds it now. A
 * failure is said and recorded, and the search goes on.
 */
export async function promoteJob(ctx: RunContext, job: PromotionJob): Promise<void> {
  const swarm = ctx.swarm!;
  // Read at once, as promote() reads it: nothing can move the incumbent in between.
  if (ctx.ledger.incumbent(ctx.run.id)?.commit !== job.commit) return swarm.releasePromotion(job);
  ctx.emit({
    type: "notice",
    text: `swarm: promoting the line's version ${job.version} to ${job.stage}, as the swarm asked`,
  });
  // A lost lease stops the promotion as a stop would, and leaves the job to its new holder.
  const lease = swarm.lease(job);
  const signal = AbortSignal.any([ctx.signal, lease]);
  setMaxListeners(0, signal);
  let table: TransferTable;
  try {
    table = await promote({ ...ctx, signal }, job.stage);
  } catch (error) {
    if (lease.aborted) return;
    if (ctx.signal.aborted) return swarm.releasePromotion(job);
    const reason = (error as Error).message;
    ctx.emit({ type: "notice", text: `swarm: the promotion to ${job.stage} failed: ${reason}` });
    await swarm.finishPromotion(job, { state: "failed", transfer: null, reason });
    return;
  }
  // A stop cuts the evaluations short: what they measured is not a table to share.
  if (lease.aborted) return;
  if (ctx.signal.aborted) return swarm.releasePromotion(job);
  await swarm.finishPromotion(job, {
    state: "done",
    transfer: { ...table, commit: job.commit, version: job.version },
    reason: null,
  });
}

/** `autoresearch promote`: the transfer table of a run's kept changes at a larger stage. */
export function promoteRun(
  options: ToolOptions & { stage?: string; seeds?: number },
): Promise<TransferTable> {
  return withRun(options, "promote", (ctx) => promote(ctx, options.stage, options.seeds));
}
