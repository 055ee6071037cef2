import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SetupError } from "../../errors.js";
import { runProcess } from "../../executors/process.js";
import { logTail } from "../../metrics/outcome.js";
import type { Stage } from "../../task/task.js";
import { paths } from "../../workspace/layout.js";
import { protectedFingerprint } from "../../workspace/protect.js";
import { setupView } from "../../workspace/views.js";
import type { RunContext } from "../context.js";
import { baseEnv } from "./env.js";

const SETUP_TIMEOUT_MS = 6 * 3600 * 1000;

/** Setups running now, by run and stage: trials that need one at once share it. */
const running = new WeakMap<RunContext, Map<string, Promise<boolean>>>();

/**
 * Runs the task's setup once per machine: a marker beside the cache records the setup
 * command, environment and protected files it ran with, so a changed prepare script
 * runs again. Returns false if the run was stopped meanwhile; throws SetupError if the
 * setup failed, since no trial can be judged without it. Trials that ask while it runs
 * (the baseline and those begun beside it) wait for the same run of it.
 */
export function ensureSetup(
  ctx: RunContext,
  worktree: string,
  commit: string,
  stage: Stage = ctx.task.stages[0]!,
): Promise<boolean> {
  const command = ctx.task.setup;
  if (!command || ctx.setupDone.has(stage.name)) return Promise.resolve(true);
  const byStage = running.get(ctx) ?? new Map<string, Promise<boolean>>();
  running.set(ctx, byStage);
  let setup = byStage.get(stage.name);
  if (!setup) {
    setup = runSetup(ctx, command, worktree, commit, stage).finally(() =>
      byStage.delete(stage.name),
    );
    byStage.set(stage.name, setup);
  }
  return setup;
}

async function runSetup(
  ctx: RunContext,
  command: string,
  worktree: string,
  commit: string,
  stage: Stage,
): Promise<boolean> {
  const { task } = ctx;
  const fingerprint = await protectedFingerprint(task.root, commit, task.protected);
  const key = createHash("sha256")
    .update(JSON.stringify([task.setup, task.env, stage.env, [...fingerprint]]))
    .digest("hex")
    .slice(0, 16);
  const cache = paths.cache(task.root);
  // Beside the cache, not in it: setup writes the cache and must not forge its own marker.
  const marker = join(paths.setupMarks(task.root), `${key}.ok`);
  if (existsSync(marker)) {
    ctx.setupDone.add(stage.name);
    ctx.emit({ type: "setup-end", seconds: 0, skipped: true });
    return true;
  }
  mkdirSync(cache, { recursive: true });
  mkdirSync(paths.setupMarks(task.root), { recursive: true });
  const first = stage === task.stages[0];
  const logPath = join(
    paths.run(task.root, ctx.run.tag),
    first ? "setup.log" : `setup-${stage.name}.log`,
  );
  ctx.emit({ type: "setup-start", command });
  ctx.ledger.event(ctx.run.id, null, "setup-start", { command });
  // Counted among the programs that run, so that what it changes outside is never put on a
  // trial; it is the task's own command, so a change is put back and said, nothing more.
  const watched = await ctx.watch.watch(worktree, () =>
    runProcess({
      command,
      cwd: worktree,
      env: { ...baseEnv(task, ctx.run.tag), ...stage.env, AR_STAGE: stage.name },
      logPath,
      logLimit: task.logLimit,
      timeoutMs: SETUP_TIMEOUT_MS,
      killGraceMs: task.killGrace * 1000,
      signal: ctx.signal,
      sandbox:
        ctx.sandbox.kind === "bwrap"
          ? {
              sandbox: ctx.sandbox,
              view: setupView(task.root, worktree, ctx.sandbox.settings.binds),
            }
          : null,
    }),
  );
  const result = watched.value;
  if (watched.changed)
    ctx.emit({
      type: "notice",
      text: `${watched.changed.files.join(", ")} changed outside the worktrees while setup ran (put back)`,
    });
  const seconds = result.durationMs / 1000;
  ctx.ledger.event(ctx.run.id, null, "setup-end", { seconds, exitCode: result.exitCode });
  if (result.aborted) return false;
  if (result.exitCode !== 0 || result.timedOut || result.spawnError) {
    const why =
      result.spawnError ??
      (result.timedOut
        ? "timed out"
        : result.signal
          ? `killed by ${result.signal}`
          : `exit code ${result.exitCode}`);
    throw new SetupError(
      `setup \`${task.setup}\` failed (${why}); fix it, then \`autoresearch resume\` (the trial runs again). The log is ${logPath}; its last lines:\n${logTail(readFileSync(logPath, "utf8"), 15)}`,
    );
  }
  writeFileSync(marker, `${new Date().toISOString()} ${task.setup}\n`);
  ctx.setupDone.add(stage.name);
  ctx.emit({ type: "setup-end", seconds, skipped: false });
  return true;
}
