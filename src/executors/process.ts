import { spawn } from "node:child_process";
import { closeSync } from "node:fs";
import type { Duplex, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { monotonic, settlesWithin } from "../util/clock.js";
import {
  endGroup,
  endMarked,
  groupAlive,
  groupGone,
  processesWithEnv,
  signalGroup,
  sleep,
  withMark,
} from "../util/proc.js";
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
  /** The largest file the command may write, where no sandbox sets it (bytes). */
  maxFileSize?: number;
  /** The command starts before its slot is its own and waits at a gate (see `Gate`). */
  gate?: Gate;
}

/**
 * A command that starts early waits for its turn at a socket, AR_GATE (a file descriptor):
 * it writes a byte there when it is ready for its timed work and reads one back when it
 * may begin; end of file there means the harness is gone. The timeout counts from `turn`.
 */
export interface Gate {
  /** Settles when the slot is the command's own. */
  turn: Promise<void>;
  /** Told when the turn came while the command still runs (it may record it; a throw ends it). */
  onTurn: () => void;
  /** Told when the command has been let through: it is in its timed work. */
  onPass: () => void;
}

/** The file descriptor the gate's socket has in the command. */
const GATE_FD = 3;

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
  /** A gated command that ended before its slot was its own: it worked beside another. */
  beforeTurn?: boolean;
  /** A gated command that ended without asking at its gate: it may have worked beside another. */
  neverAsked?: boolean;
}

/** The result of a command that never ran. */
function notStarted(started: number, spawnError: string | null): ProcessResult {
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

/** How long the log writer may take to write what it holds once its replicate is gone. */
const WRITER_WAIT_MS = 5000;

/**
 * The program that caps a log as it is written (see libexec/log-writer.cjs), at the
 * package's root beside src/ and dist/, so either runs it.
 */
const LOG_WRITER = fileURLToPath(new URL("../../libexec/log-writer.cjs", import.meta.url));

/** The environment entry of a log's writer, by which recovery finds one still running. */
const WRITER_MARK = "AR_LOG_WRITER";
const writerMarkOf = (logPath: string) => `${WRITER_MARK}=${logPath}`;

/**
 * Runs `command` through /bin/sh in a process group of its own, its output going through
 * a log writer of its own into a log file it keeps within `logLimit` (a process apart, so
 * a result printed after the orchestrator died is not lost). On timeout or abort the whole
 * group gets SIGTERM, then SIGKILL after the grace period; once the command exits,
 * whatever it left behind in its group is killed, and so is any process that left the
 * group but still carries its mark: AR_PROCESS set to
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
    // A stop that came while this waited for its slot: nothing is started only to be ended.
    if (spec.signal?.aborted) {
      closeSync(fd);
      noteLog(spec.logPath, "stopped by the harness before it started");
      resolve({ ...notStarted(started, null), aborted: true });
      return;
    }
    const { env, mark } = withMark(spec.env, spec.logPath);
    let launch: Launch;
    let writer: Writer;
    try {
      launch = confine(
        spec.sandbox ?? null,
        ["/bin/sh", "-c", spec.command],
        spec.maxFileSize,
        spec.gate ? GATE_FD : undefined,
      );
      writer = startWriter(fd, spec.logPath, spec.logLimit);
    } catch (error) {
      resolve(
        notStarted(
          started,
          `the harness could not prepare the command: ${(error as Error).message}`,
        ),
      );
      return;
    } finally {
      // The writer holds the log now; a failed start leaves it empty.
      closeSync(fd);
    }
    const gate = spec.gate;
    const child = spawn(launch.file, launch.args, {
      cwd: spec.cwd,
      env: gate ? { ...env, AR_GATE: String(GATE_FD) } : env,
      detached: true,
      // Node's pipes to a child are socket pairs: the gate is read and written both ways.
      stdio: ["ignore", writer.input, writer.input, ...(gate ? ["pipe" as const] : [])],
    });
    const pid = child.pid ?? null;
    let timedOut = false;
    let aborted = false;
    let ending: Promise<void> | null = null;
    let spawnError: string | null = null;
    let finished = false;

    const end = (why: string) => {
      if (ending || pid === null) return;
      writer.note(why);
      ending = endGroup(pid, spec.killGraceMs);
    };
    // Time counts from the command's turn: before it, it only prepares beside another.
    let turnAt: number | null = gate ? null : started;
    let timer: NodeJS.Timeout | undefined;
    const startClock = () => {
      turnAt = monotonic();
      timer = setTimeout(() => {
        timedOut = true;
        // A program that waits at its gate without having asked there waits for ever.
        const silent = asked?.() === false ? neverAsked : "";
        end(`timeout after ${spec.timeoutMs / 1000}s: process group ended${silent}`);
      }, spec.timeoutMs);
    };
    const asked = gate
      ? watchGate(child.stdio[GATE_FD] as Duplex | null, gate, {
          running: () => !finished && !ending,
          startClock,
          // Like a failure to record the process: it must not run on unrecorded.
          fail: (error) => {
            spawnError = `the harness could not record the replicate's turn: ${error.message}`;
            end(spawnError);
          },
        })
      : null;
    if (!gate) startClock();
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
      if (gate) (child.stdio[GATE_FD] as Duplex | null)?.destroy();
      spec.signal?.removeEventListener("abort", onAbort);
      if (ending) await ending;
      // SIGKILL takes effect asynchronously: the slot is free (its GPU memory released)
      // only once the group is really gone.
      if (pid !== null) await groupGone(pid, GONE_WAIT_MS);
      const escaped = await endMarked(mark, 0);
      if (escaped > 0)
        writer.note(
          `ended ${escaped} process${escaped === 1 ? "" : "es"} that left the replicate's process group`,
        );
      launch.done();
      // The command's time ends with its processes, not with the writer's last write; one
      // that ended before its turn never held its slot.
      const durationMs = turnAt === null ? 0 : monotonic() - turnAt;
      await writer.close();
      const log = capLog(spec.logPath, spec.logLimit);
      resolve({
        pid,
        exitCode: code,
        signal,
        timedOut,
        aborted,
        durationMs,
        endedAt: Date.now(),
        logBytes: log.bytes,
        truncated: log.truncated,
        spawnError,
        ...(gate && turnAt === null && !aborted && !timedOut ? { beforeTurn: true } : {}),
        ...(gate && !aborted && !timedOut && asked?.() === false ? { neverAsked: true } : {}),
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

const neverAsked =
  "; it never asked at its gate: with `overlap: true` the program writes a byte to the descriptor AR_GATE names, then reads one";

/**
 * Lets the command through its gate once it has asked (a byte) and its turn has come;
 * `startClock` runs at the turn. Bytes after the first ask change nothing. Letting it
 * through also ends the harness's side, so that nothing of the gate keeps it alive.
 * Returns whether it has asked.
 */
function watchGate(
  socket: Duplex | null,
  gate: Gate,
  on: { running: () => boolean; startClock: () => void; fail: (error: Error) => void },
): () => boolean {
  const { running, startClock } = on;
  let asked = false;
  let turned = false;
  let passed = false;
  const pass = () => {
    if (passed || !asked || !turned || !running()) return;
    passed = true;
    // Nothing more is read from it: a program that floods the gate floods itself.
    socket?.end("1", () => socket.destroy());
    gate.onPass();
  };
  socket?.on("error", () => undefined);
  socket?.once("data", () => {
    asked = true;
    socket.pause();
    pass();
  });
  void gate.turn.then(() => {
    if (!running()) return;
    try {
      gate.onTurn();
    } catch (error) {
      on.fail(error as Error);
      return;
    }
    turned = true;
    startClock();
    pass();
  });
  return () => asked;
}

interface Writer {
  /** The pipe the command writes its output into. */
  input: Writable;
  /** Adds a line of the harness's own to the log, clearly marked (why the command ended). */
  note(text: string): void;
  /** Lets the writer finish once the command's processes are gone; resolves when it has. */
  close(): Promise<void>;
}

/**
 * Starts the log writer for `fd` (the log, which it takes over). It runs in a group of its
 * own, so ending the command's group leaves it to write the last lines, and with a mark of
 * its own, not the command's, so ending the command's escaped processes spares it. The
 * harness keeps a copy of its input for notes; the writer ends when the command's copies
 * and this one are closed.
 */
function startWriter(fd: number, logPath: string, limit: number): Writer {
  const child = spawn(process.execPath, [LOG_WRITER, String(limit)], {
    detached: true,
    stdio: ["pipe", fd, "ignore"],
    env: { [WRITER_MARK]: logPath },
  });
  if (!child.stdin || child.pid === undefined) throw new Error("the log writer did not start");
  const input = child.stdin;
  const exited = new Promise<void>((r) => {
    child.once("exit", () => r());
    child.once("error", () => r());
  });
  let open = true;
  let closing = false;
  // A writer that died (killed from outside) must not take the harness down with EPIPE.
  input.on("error", () => {
    open = false;
  });
  child.once("exit", (code, signal) => {
    open = false;
    if (!closing)
      noteLog(
        logPath,
        `the log writer ended early (${signal ?? `exit code ${code}`}): what the command wrote after that was lost`,
      );
  });
  return {
    input,
    note(text) {
      if (open) input.write(`\n[autoresearch] ${text}\n`);
      else noteLog(logPath, text);
    },
    async close() {
      closing = true;
      input.end();
      // Something that left the group without its mark can hold the pipe open: the writer is
      // told to stop (it writes what it has), then killed.
      if (await settlesWithin(exited, WRITER_WAIT_MS)) return;
      child.kill("SIGTERM");
      if (!(await settlesWithin(exited, WRITER_WAIT_MS))) child.kill("SIGKILL");
    },
  };
}

/**
 * Waits for a log writer left by an orchestrator that stopped to write what it holds (it
 * ends by itself once its replicate is gone); one still running after that is stopped.
 */
export async function settleWriter(logPath: string, graceMs: number): Promise<void> {
  const entry = writerMarkOf(logPath);
  const deadline = monotonic() + WRITER_WAIT_MS;
  while (processesWithEnv(entry).length > 0 && monotonic() < deadline) await sleep(20);
  await endMarked(entry, graceMs);
}
