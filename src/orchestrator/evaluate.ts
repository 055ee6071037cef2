import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promotions } from "../ledger/promotions.js";
import { classify } from "../metrics/outcome.js";
import type { Stage } from "../task/task.js";
import { addWorktree, removeWorktree } from "../workspace/worktree.js";
import type { RunContext } from "./context.js";
import { replicateEnv } from "./env.js";
import { paths } from "./paths.js";
import { ensureSetup } from "./setup.js";

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
      const resultFile = join(dir, `result.${seed}.json`);
      const id = promotions.startEvaluation(ledger, { promotionId, ...subject, seed, logPath });
      const execution = await ctx.executor.run({
        name: `ar-${run.tag}-p${promotionId}-${seed}`,
        command: task.run,
        cwd: worktree,
        env: replicateEnv(task, run.tag, {
          trial: `p${promotionId}`,
          idx: 0,
          seed,
          resultFile,
          stage,
        }),
        logPath,
        logLimit: task.logLimit,
        timeoutMs: stage.timeout * 1000,
        killGraceMs: task.killGrace * 1000,
        gpus: task.resources.gpus,
        cpus: task.resources.cpus,
        signal: ctx.signal,
        onStart: () => undefined,
        onRunning: (at) => promotions.evaluationRunning(ledger, id, at),
      });
      const log = existsSync(logPath) ? readFileSync(logPath, "utf8") : "";
      const result = classify(
        execution.process,
        log,
        task,
        existsSync(resultFile) ? readFileSync(resultFile, "utf8") : null,
      );
      promotions.finishEvaluation(ledger, id, result);
      if (result.outcome === "ok" && result.metric !== null) values.push(result.metric);
    }
    return values;
  } finally {
    await removeWorktree(task.root, worktree).catch(() => undefined);
  }
}
