import { readFileSync } from "node:fs";

/**
 * The kernel's start time of a process (clock ticks since boot), or null if it is gone.
 * Stored next to a pid so that a restarted orchestrator never signals a stranger that
 * happens to have reused the number.
 */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses; fields resume after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** True if the process `pid` exists and, when given, started at `startTime`. */
export function isAlive(pid: number, startTime?: string | null): boolean {
  const now = processStartTime(pid);
  if (now === null) return false;
  return startTime == null || now === startTime;
}

/** True if any process is left in the process group `pgid`. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
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
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && groupAlive(pgid)) await sleep(Math.min(50, graceMs));
  signalGroup(pgid, "SIGKILL");
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
