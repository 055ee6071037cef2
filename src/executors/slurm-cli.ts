import { execFile } from "node:child_process";
import { userInfo } from "node:os";

/** A SLURM command that failed; its message is SLURM's own. */
export class SlurmError extends Error {}

/** Runs a SLURM command and returns its stdout; rejects with its stderr. */
export function slurm(command: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error)
        reject(new SlurmError(`${command} ${args.join(" ")}: ${(stderr || error.message).trim()}`));
      else resolve(stdout);
    });
  });
}

/** States after which a job will not run again on its own. */
export const FINAL_STATES = new Set([
  "COMPLETED",
  "FAILED",
  "TIMEOUT",
  "CANCELLED",
  "NODE_FAIL",
  "OUT_OF_MEMORY",
  "PREEMPTED",
  "BOOT_FAIL",
  "DEADLINE",
]);

/** Final states caused by the machine rather than the program: the replicate is submitted again. */
export const REQUEUE_STATES = new Set(["NODE_FAIL", "BOOT_FAIL", "PREEMPTED"]);

export interface JobState {
  /** PENDING, RUNNING, COMPLETED, ... or UNKNOWN when SLURM has no record of the job. */
  state: string;
  exitCode: number | null;
  signal: number | null;
  /** When the job started to run, by the scheduler's clock; null if it never ran or SLURM does not say. */
  startedAt: number | null;
}

/** Final states that only a job which ran can reach. */
export const RAN_STATES = new Set(["COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY"]);

/** SLURM's local `YYYY-MM-DDTHH:MM:SS`, or null for Unknown, None or N/A. */
function parseTime(text: string | undefined): number | null {
  const at = text && /^\d{4}-\d\d-\d\dT/.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isFinite(at) ? at : null;
}

function parseExit(text: string | undefined): { exitCode: number | null; signal: number | null } {
  const [code, signal] = (text ?? "").split(":").map(Number);
  return {
    exitCode: Number.isFinite(code) ? code! : null,
    signal: Number.isFinite(signal) && signal! > 0 ? signal! : null,
  };
}

/**
 * A job's state: from squeue while it is queued or running, then from accounting
 * (sacct), and from the controller's memory (scontrol) where accounting is not kept.
 */
export async function jobState(jobId: string): Promise<JobState> {
  const queued = await slurm("squeue", ["-h", "-j", jobId, "-o", "%T|%S"]).catch(() => "");
  const [live, start] = (queued.trim().split("\n")[0] ?? "").split("|").map((s) => s.trim());
  // For a pending job, %S is only the scheduler's forecast.
  if (live)
    return {
      state: live,
      exitCode: null,
      signal: null,
      startedAt: live === "RUNNING" ? parseTime(start) : null,
    };
  const accounted = await slurm("sacct", [
    "-X",
    "-n",
    "-P",
    "-j",
    jobId,
    "-o",
    "State,ExitCode,Start,AllocNodes",
  ]).catch(() => "");
  const line = accounted.trim().split("\n")[0];
  // A job cancelled while pending gets its end time as its start: only one given nodes ran.
  if (line) {
    const [state, exit, start, nodes] = line.split("|");
    return {
      state: (state ?? "").split(" ")[0]!,
      ...parseExit(exit),
      startedAt: Number(nodes) > 0 ? parseTime(start) : null,
    };
  }
  const shown = await slurm("scontrol", ["show", "job", "-o", jobId]).catch(() => "");
  const state = /JobState=(\S+)/.exec(shown)?.[1];
  if (state)
    return {
      state,
      ...parseExit(/ExitCode=(\S+)/.exec(shown)?.[1]),
      startedAt: /\bBatchHost=\S/.test(shown)
        ? parseTime(/\bStartTime=(\S+)/.exec(shown)?.[1])
        : null,
    };
  return { state: "UNKNOWN", exitCode: null, signal: null, startedAt: null };
}

/** Submits a batch script; returns the job id. */
export async function sbatch(args: string[], script: string): Promise<string> {
  const out = await slurm("sbatch", ["--parsable", ...args, script]);
  const id = out.trim().split(";")[0]!;
  if (!/^\d+(_\d+)?$/.test(id)) throw new SlurmError(`sbatch printed no job id: ${out.trim()}`);
  return id;
}

export async function scancel(jobId: string): Promise<void> {
  await slurm("scancel", [jobId]).catch(() => undefined);
}

/** A queued or running job of this user with this name and batch script, or null. */
export async function findQueued(name: string, script: string): Promise<string | null> {
  // A controller that does not answer right now must not stop a resume.
  const out = await slurm("squeue", [
    "-h",
    "-u",
    userInfo().username,
    "-n",
    name,
    "-o",
    "%i|%o",
  ]).catch(() => "");
  for (const line of out.trim().split("\n")) {
    const [id, command] = line.split("|");
    if (id && command?.trim() === script) return id.trim();
  }
  return null;
}
