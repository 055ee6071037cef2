import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { monotonic } from "./clock.js";

/**
 * The kernel's start time of a process (clock ticks since boot), or null if it is gone.
 * Stored next to a pid so that a restarted orchestrator never signals a stranger that
 * happens to have reused the number.
 */
export function processStartTime(pid: number): string | null {
  return statFields(pid)?.[19] ?? null;
}

/** Fields 3 onwards of /proc/<pid>/stat (state first), or null if there is no such process. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses; fields resume after the last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** True if the process `pid` runs (a zombie does not) and, when given, started at `startTime`. */
export function isAlive(pid: number, startTime?: string | null): boolean {
  const fields = statFields(pid);
  if (!fields || fields[0] === "Z" || fields[0] === "X") return false;
  return startTime == null || fields[19] === startTime;
}

/**
 * True if a live process is left in the process group `pgid`. Zombies do not count:
 * they are already dead, and where nothing reaps orphans they would linger forever.
 */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const fields = statFields(Number(name));
    if (fields && Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") return true;
  }
  return false;
}

/** Sends `signal` to a whole process group; a group that is already gone is not an error. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/** SIGTERM, then SIGKILL after `graceMs` if anything of the group remains. */
export async function endGroup(pgid: number, graceMs: number): Promise<void> {
  signalGroup(pgid, "SIGTERM");
  const deadline = monotonic() + graceMs;
  while (monotonic() < deadline && groupAlive(pgid)) await sleep(Math.min(50, graceMs));
  signalGroup(pgid, "SIGKILL");
}

/** Waits until nothing of the group is alive, at most `ms`; returns false if something still is. */
export async function groupGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = monotonic() + ms;
  // Most groups are gone within a millisecond or two of their leader (a sandbox's PID
  // namespace takes that long to tear down): look again soon before settling into 20 ms.
  for (let wait = 1; groupAlive(pgid); wait = Math.min(20, wait * 2)) {
    if (monotonic() >= deadline) return false;
    await sleep(wait);
  }
  return true;
}

/** The environment entry that marks a process, and all it starts, with `value`. */
export const markOf = (value: string) => `AR_PROCESS=${value}`;

/**
 * `env` with an AR_PROCESS mark (`value` must be unique on the machine; a fresh one by
 * default), and the mark as an entry for endMarked. Everything the process starts inherits
 * it, so it finds them wherever they went.
 */
export function withMark(
  env: NodeJS.ProcessEnv,
  value: string = randomUUID(),
): { env: NodeJS.ProcessEnv; mark: string } {
  return { env: { ...env, AR_PROCESS: value }, mark: markOf(value) };
}

/**
 * Live processes whose environment holds `entry` (NAME=value) exactly: the ones a process
 * started, wherever they went, since the environment is inherited across setsid and
 * double forks. A process that clears its environment, or runs as another user, is not found.
 */
export function processesWithEnv(entry: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${name}/environ`, "latin1");
    } catch {
      continue;
    }
    if (environ.split("\0").includes(entry) && isAlive(Number(name))) found.push(Number(name));
  }
  return found;
}

/**
 * Ends the processes that carry `entry` in their environment, such as those of a replicate
 * that left its process group (setsid, a daemonising double fork) and so escaped the group
 * kill: SIGTERM, then SIGKILL to those left after `graceMs` (at once when 0); then waits a
 * few seconds at most for them to go. Returns how many there were.
 */
export async function endMarked(entry: string, graceMs: number): Promise<number> {
  const marked = processesWithEnv(entry);
  const send = (signal: NodeJS.Signals) => {
    for (const pid of marked) {
      try {
        process.kill(pid, signal);
      } catch {
        // Gone already.
      }
    }
  };
  const gone = async (ms: number) => {
    const deadline = monotonic() + ms;
    while (marked.some((pid) => isAlive(pid)) && monotonic() < deadline) await sleep(20);
  };
  if (graceMs > 0) {
    send("SIGTERM");
    await gone(graceMs);
  }
  send("SIGKILL");
  await gone(5000);
  return marked.length;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
