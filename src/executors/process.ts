import { spawn } from "node:child_process";
import { closeSync } from "node:fs";
import { monotonic } from "../util/clock.js";
import { endGroup, endMarked, groupAlive, groupGone, signalGroup, withMark } from "../util/proc.js";
import { type Confinement, confine, type Launch } from "./confine.js";
import { capLog, noteLog, openLog } from "./log-file.js";

export interface ProcessSpec {
  command: string;
  cwd: string;
  env: Record<string, string>;
  logPath: string;
  logLimit: number;
  timeoutMs: number;
  killGraceMs: number;
  signal?: AbortSignal;
  /** Called once the process exists, so its pid can be recorded before it can outlive us. */
  onSpawn?: (pid: number) => void;
  /** The run's sandbox and what the command sees through it; none when absent. */
  sandbox?: Confinement | null;
}

export interface ProcessResult {
  pid: number | null;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
  logBytes: number;
  truncated: boolean;
  /** Set when the command could not be started at all. */
  spawnError: string | null;
  /** A cluster job's final state (COMPLETED, FAILED, OUT_OF_MEMORY, ...), for jobs only. */
  jobState?: string;
  /** When it ended (epoch milliseconds). */
  endedAt?: number;
}

/** The result of a command that never ran. */
function notStarted(started: number, spawnError: string): ProcessResult {
  return {
    pid: null,
    exitCode: null,
    signal: null,
    timedOut: false,
    aborted: false,
    durationMs: monotonic() - started,
    endedAt: Date.now(),
    logBytes: 0,
    truncated: false,
    spawnError,
  };
}

/** How long a killed process group may take to disappear. */
const GONE_WAIT_MS = 5000;

/** How often a running process's log is checked against its limit. */
const CAP_EVERY_MS = 1000;

/**
 * Runs `command` through /bin/sh in a process group of its own, writing its output
 * straight into a bounded log file (so a result printed after the orchestrator died is
 * not lost). On timeout or abort the whole group gets SIGTERM, then SIGKILL after the
 * grace period; once the command exits, whatever it left behind in its group is killed,
 * and so is any process that left the group but still carries its mark: AR_PROCESS set to
 * the log's path, which only this process writes and the ledger records before it starts,
 * so a restarted orchestrator finds what it left running even without a recorded pid.
 * Contract: never rejects; every way a process can end is described by the result.
 */
export function runProcess(spec: ProcessSpec): Promise<ProcessResult> {
  const started = monotonic();
  return new Promise((resolve) => {
    let fd: number;
    try {
      fd = openLog(spec.logPath);
    } catch (error) {
      // Nothing runs without a log of its own: what was at its path stays untouched.
      resolve(
        notStarted(started, `the harness could not create its log: ${(error as Error).message}`),
      );
      return;
    }
    const { env, mark } = withMark(spec.env, spec.logPath);
    let launch: Launch;
    try {
      launch = confine(spec.sandbox ?? null, ["/bin/sh", "-c", spec.command]);
    } catch (error) {
      closeSync(fd);
      resolve(
        notStarted(
          started,
          `the harness could not prepare the sandbox: ${(error as Error).message}`,
        ),
      );
      return;
    }
    const child = spawn(launch.file, launch.args, {
      cwd: spec.cwd,
      env,
      detached: true,
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    const pid = child.pid ?? null;
    let timedOut = false;
    let aborted = false;
    let ending: Promise<void> | null = null;
    let spawnError: string | null = null;
    let finished = false;

    const end = (why: string) => {
      if (ending || pid === null) return;
      noteLog(spec.logPath, why);
      ending = endGroup(pid, spec.killGraceMs);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      end(`timeout after ${spec.timeoutMs / 1000}s: process group ended`);
    }, spec.timeoutMs);
    // A flood is trimmed while it runs, not only at the end, so it cannot fill the disk.
    const capper = setInterval(
      () => capLog(spec.logPath, spec.logLimit, spec.logLimit),
      CAP_EVERY_MS,
    );
    const onAbort = () => {
      aborted = true;
      end("stopped by the harness: process group ended");
    };
    if (spec.signal?.aborted) onAbort();
    else spec.signal?.addEventListener("abort", onAbort, { once: true });

    const finish = async (code: number | null, signal: NodeJS.Signals | null) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      clearInterval(capper);
      spec.signal?.removeEventListener("abort", onAbort);
      if (ending) await ending;
      // SIGKILL takes effect asynchronously: the slot is free (its GPU memory released)
      // only once the group is really gone.
      if (pid !== null) await groupGone(pid, GONE_WAIT_MS);
      const escaped = await endMarked(mark, 0);
      if (escaped > 0)
        noteLog(
          spec.logPath,
          `ended ${escaped} process${escaped === 1 ? "" : "es"} that left the replicate's process group`,
        );
      launch.done();
      const log = capLog(spec.logPath, spec.logLimit);
      resolve({
        pid,
        exitCode: code,
        signal,
        timedOut,
        aborted,
        durationMs: monotonic() - started,
        endedAt: Date.now(),
        logBytes: log.bytes,
        truncated: log.truncated,
        spawnError,
      });
    };

    child.on("error", (error) => {
      spawnError = error.message;
      void finish(null, null);
    });
    child.on("exit", (code, signal) => {
      // Children that outlive the command die with it; a replicate owns nothing after exit.
      if (pid !== null && groupAlive(pid)) signalGroup(pid, "SIGKILL");
      void finish(code, signal);
    });
    try {
      if (pid !== null) spec.onSpawn?.(pid);
    } catch (error) {
      // A process the harness could not record (a full disk) must not run on unwatched.
      spawnError = `the harness could not record the process: ${(error as Error).message}`;
      end(spawnError);
    }
  });
}
