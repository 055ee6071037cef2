import type { ChildProcess } from "node:child_process";
import { startCli, waitFor } from "../helpers.js";

/**
 * The CLI as a child: its exit code when it ends, and when (Date.now()) its output first
 * matched a pattern.
 */
export function watched(child: ChildProcess & { out: string }) {
  let exitedAt = 0;
  const code = new Promise<number | null>((resolve) =>
    child.on("close", (c) => {
      exitedAt = Date.now();
      resolve(c);
    }),
  );
  const seen = new Map<RegExp, number>();
  const patterns: RegExp[] = [];
  const look = () => {
    for (const p of patterns) if (!seen.has(p) && p.test(child.out)) seen.set(p, Date.now());
  };
  child.stdout!.on("data", look);
  child.stderr!.on("data", look);
  return {
    code,
    get exitedAt() {
      return exitedAt;
    },
    /** From now on, notes when the output first matches `pattern`. */
    note(pattern: RegExp) {
      patterns.push(pattern);
      look();
    },
    at: (pattern: RegExp) => seen.get(pattern),
    /** The exit code, or "running" when `ms` pass first. */
    within: (ms: number) =>
      Promise.race([code, new Promise<"running">((r) => setTimeout(() => r("running"), ms))]),
  };
}

/**
 * Host "a"'s run "r" of two trials (the baseline and #1, each replicate `sleepS` seconds)
 * with the task file's command researcher, on one class; resolves `lastTrial` once #1's
 * replicate runs, the moment the tests make the swarm fail.
 */
export function runToLimit(dir: string, url: string, env: Record<string, string>, sleepS: number) {
  const child = startCli(
    [
      ...["run", "--tag", "r", "--max-trials", "2", "--lookahead", "0"],
      ...["--researcher", "command", "--hardware-class", "cpu", "--swarm", url],
    ],
    dir,
    { ...env, TEST_SLEEP_S: String(sleepS) },
  );
  const lastTrial = () =>
    waitFor(() => /#1 replicate 0 running/.test(child.out), 60_000, "the last trial");
  return { child, host: watched(child), lastTrial };
}
