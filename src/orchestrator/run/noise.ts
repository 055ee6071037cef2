import { UsageError } from "../../errors.js";
import { mean, sd } from "../../judge/stats.js";
import type { NoiseFloor } from "../../ledger/types.js";
import { paths } from "../../workspace/layout.js";
import { addWorktree, removeWorktree } from "../../workspace/worktree.js";
import type { RunContext } from "../context.js";
import { runReplicates } from "../trial/replicates.js";
import { type ToolOptions, withRun } from "./open.js";

/**
 * Measures the noise floor again: the incumbent runs on `count` more seeds, as further
 * replicates of its own trial (so later trials can be paired with them too), and the
 * spread of all its replicates becomes the run's noise floor.
 */
export async function measureNoise(ctx: RunContext, count: number): Promise<NoiseFloor> {
  const { ledger, run, task } = ctx;
  const incumbent = ledger.incumbent(run.id);
  if (!incumbent?.commit)
    throw new UsageError(
      `run "${run.tag}" has no incumbent yet: its baseline measures the noise floor`,
    );
  // As `run` and `resume` say it: what bounds the replicates about to run.
  ctx.emit({ type: "notice", text: ctx.sandbox.summary });
  const have = new Set(ledger.replicates(incumbent.id).map((r) => r.seed));
  const seeds: number[] = [];
  for (let s = run.seed; seeds.length < count; s++) if (!have.has(s)) seeds.push(s);
  const worktree = `${paths.worktree(task.root, run.tag, incumbent.n)}-noise`;
  await addWorktree(task.root, worktree, incumbent.commit);
  try {
    await runReplicates(ctx, incumbent, worktree, incumbent.commit, null, undefined, seeds);
  } finally {
    await removeWorktree(task.root, worktree);
  }
  const values = ledger
    .replicates(incumbent.id)
    .filter((r) => r.outcome === "ok" && r.metric !== null)
    .map((r) => ({ seed: r.seed, value: r.metric! }));
  const noise: NoiseFloor = {
    trial: incumbent.n,
    seeds: values.map((v) => v.seed),
    values: values.map((v) => v.value),
    mean: mean(values.map((v) => v.value)),
    sd: sd(values.map((v) => v.value)),
    at: Date.now(),
  };
  ledger.setNoise(run.id, noise);
  ledger.event(run.id, incumbent.id, "noise", noise);
  return noise;
}

/** `autoresearch noise`: the incumbent on more seeds, and the run's noise floor again. */
export function noiseRun(options: ToolOptions & { seeds: number }): Promise<NoiseFloor> {
  return withRun(options, "measure", (ctx) => measureNoise(ctx, options.seeds));
}
