import { spawn } from "node:child_process";
import { endGroup, groupAlive, signalGroup } from "../util/proc.js";
import { LogSink } from "./log-sink.js";

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

/** How long to wait for output pipes to drain once the process group is gone. */
const DRAIN_MS = 2000;

/**
 * Runs `command` through /bin/sh in a process group of its own, with output captured to a
 * bounded log. On timeout or abort the whole group gets SIGTERM, then SIGKILL after the
 * grace period; once the command exits, whatever it left behind in its group is killed.
 * Contract: never rejects; every way a process can end is described by the result.
 */
export function runProcess(spec: ProcessSpec): Promise<ProcessResult> {
  const started = Date.now();
  const log = new LogSink(spec.logPath, spec.logLimit);
  return new Promise((resolve) => {
    const child = spawn("/bin/sh", ["-c", spec.command], {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const pid = child.pid ?? null;
    let timedOut = false;
    let aborted = false;
    let ending: Promise<void> | null = null;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    let openStreams = 2;
    let spawnError: string | null = null;

    const end = (why: string) => {
      if (ending || pid === null) return;
      log.note(why);
      ending = endGroup(pid, spec.killGraceMs);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      end(`timeout after ${spec.timeoutMs / 1000}s: process group ended`);
    }, spec.timeoutMs);
    const onAbort = () => {
      aborted = true;
      end("stopped by the harness: process group ended");
    };
    if (spec.signal?.aborted) onAbort();
    else spec.signal?.addEventListener("abort", onAbort, { once: true });

    const finish = async () => {
      clearTimeout(timer);
      spec.signal?.removeEventListener("abort", onAbort);
      if (ending) await ending;
      log.close();
      resolve({
        pid,
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        timedOut,
        aborted,
        durationMs: Date.now() - started,
        endedAt: Date.now(),
        logBytes: log.total,
        truncated: log.truncated,
        spawnError,
      });
    };
    const streamClosed = () => {
      openStreams -= 1;
      if (openStreams === 0 && exit) void finish();
    };

    child.stdout.on("data", (chunk: Buffer) => log.write(chunk));
    child.stderr.on("data", (chunk: Buffer) => log.write(chunk));
    child.stdout.on("close", streamClosed);
    child.stderr.on("close", streamClosed);
    child.on("error", (error) => {
      spawnError = error.message;
      if (!exit) {
        exit = { code: null, signal: null };
        if (openStreams === 0) void finish();
      }
    });
    if (pid !== null) spec.onSpawn?.(pid);

    child.on("exit", (code, signal) => {
      exit = { code, signal };
      // Children that outlive the command die with it; a replicate owns nothing after exit.
      if (pid !== null && groupAlive(pid)) signalGroup(pid, "SIGKILL");
      if (openStreams === 0) return void finish();
      // A process that left the group may still hold the pipes; stop waiting for it.
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, DRAIN_MS).unref();
    });
  });
}
