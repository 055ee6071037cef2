import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { promotions } from "../../ledger/promotions.js";
import type { Stage } from "../../task/task.js";
import { paths } from "../../workspace/layout.js";
import { addWorktree, removeWorktree } from "../../workspace/worktree.js";
import type { RunContext } from "../context.js";
import { runReplicate } from "../trial/replicate.js";
import { ensureSetup } from "../trial/setup.js";

/** One commit to measure at a stage: the baseline, the incumbent, or the incumbent without a change. */
export interface Subject {
  label: string;
  ablatedN: number | null;
  commit: string;
}

/**
 * Runs a commit at a stage once per seed, on the run's slots, and records each value as
 * an evaluation of the promotion. Returns the values of the replicates that gave one.
 */
export async function evaluate(
  ctx: RunContext,
  promotionId: number,
  subject: Subject,
  stage: Stage,
  seeds: number[],
): Promise<number[]> {
  const { task, run, ledger } = ctx;
  const dir = join(
    paths.run(task.root, run.tag),
    "promotions",
    String(promotionId),
    subject.label.replace(/[^\w-]+/g, "-"),
  );
  mkdirSync(dir, { recursive: true });
  const worktree = `${paths.worktree(task.root, run.tag, 0)}-p${promotionId}-${subject.label.replace(/[^\w-]+/g, "-")}`;
  await addWorktree(task.root, worktree, subject.commit);
  const values: number[] = [];
  try {
    if (!(await ensureSetup(ctx, worktree, subject.commit, stage))) return values;
    for (const seed of seeds) {
      if (ctx.signal.aborted) break;
      const logPath = join(dir, `run.${seed}.log`);
      const id = promotions.startEvaluation(ledger, { promotionId, ...subject, seed, logPath });
      const evaluate = () =>
        runReplicate(ctx, {
          name: `ar-${run.tag}-p${promotionId}-${seed}`,
          worktree,
          stage,
          trial: `p${promotionId}`,
          idx: 0,
          seed,
          logPath,
          resultPath: join(dir, `result.${seed}.json`),
          onRunning: (at) => promotions.evaluationRunning(ledger, id, at),
        });
      // Watched like a replicate, so that what it changes outside is never put on a trial.
      const { value, changed: escaped } = await ctx.watch.own(worktree, evaluate);
      const result = escaped.length
        ? {
            ...value.result,
            outcome: "crash" as const,
            metric: null,
            reason: `changed files outside its worktree: ${escaped.join(", ")} (put back)`,
          }
        : value.result;
      promotions.finishEvaluation(ledger, id, result);
      if (result.outcome === "ok" && result.metric !== null) values.push(result.metric);
    }
    return values;
  } finally {
    await removeWorktree(task.root, worktree).catch(() => undefined);
  }
}
