import { spawn } from "node:child_process";
import { type Confinement, confine, type Launch } from "../executors/confine.js";
import { endGroup, endMarked, groupAlive, signalGroup, withMark } from "../util/proc.js";
import { redact } from "../util/secrets.js";

export interface Captured {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  aborted: boolean;
  /** Set when the program could not be started (not installed, not executable). */
  spawnError: string | null;
}

const CAP = 10_000_000;

const NOT_RUN: Captured = {
  code: null,
  signal: null,
  stdout: "",
  stderr: "",
  timedOut: false,
  aborted: false,
  spawnError: null,
};

/**
 * Runs a researcher's program (a coding agent, a user's command) in its own process
 * group, feeding `input` on stdin and capturing stdout and stderr apart. The whole group
 * is ended on timeout or abort; what the program leaves behind, in its group or marked as
 * its own, is ended when it exits. Never rejects.
 */
export function runCaptured(
  file: string,
  args: string[],
  o: {
    cwd: string;
    input: string;
    timeoutMs: number;
    signal: AbortSignal;
    env?: NodeJS.ProcessEnv;
    /** The run's sandbox and what the program sees; none when null or absent. */
    sandbox?: Confinement | null;
  },
): Promise<Captured> {
  return new Promise((resolve) => {
    const { env, mark } = withMark(o.env ?? process.env);
    let launch: Launch;
    try {
      launch = confine(o.sandbox ?? null, [file, ...args]);
    } catch (error) {
      const why = `the harness could not prepare the sandbox: ${(error as Error).message}`;
      resolve({ ...NOT_RUN, stderr: why, spawnError: why });
      return;
    }
    const child = spawn(launch.file, launch.args, {
      cwd: o.cwd,
      env,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let aborted = false;
    let spawnError: string | null = null;
    let ending: Promise<void> | null = null;
    const end = () => {
      if (!ending && child.pid) ending = endGroup(child.pid, 5000);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      end();
    }, o.timeoutMs);
    const onAbort = () => {
      aborted = true;
      end();
    };
    o.signal.addEventListener("abort", onAbort, { once: true });
    child.stdout.on("data", (d: Buffer) => {
      if (stdout.length < CAP) stdout += d.toString("utf8");
    });
    child.stderr.on("data", (d: Buffer) => {
      if (stderr.length < CAP) stderr += d.toString("utf8");
    });
    // A program that does not read its input must not make us fail on EPIPE.
    child.stdin.on("error", () => undefined);
    child.stdin.end(o.input);
    child.on("error", (error) => {
      spawnError = error.message;
    });
    child.on("close", async (code, signal) => {
      clearTimeout(timer);
      o.signal.removeEventListener("abort", onAbort);
      if (ending) await ending;
      if (child.pid && groupAlive(child.pid)) signalGroup(child.pid, "SIGKILL");
      await endMarked(mark, 0);
      launch.done();
      // The program may print its own credentials; its output is recorded.
      resolve({
        code,
        signal,
        stdout: redact(stdout),
        stderr: redact(stderr),
        timedOut,
        aborted,
        spawnError,
      });
    });
  });
}

/** TITLE: and HYPOTHESIS: lines of an agent's last message; else its first line and the rest. */
export function titleAndHypothesis(text: string): { title: string; hypothesis: string } | null {
  const last = (label: string) =>
    [...text.matchAll(new RegExp(`^\\s*\\**${label}\\**:\\s*(.+)$`, "gim"))].at(-1)?.[1]?.trim();
  const title = last("TITLE");
  if (title) return { title: title.slice(0, 200), hypothesis: last("HYPOTHESIS") ?? "" };
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  if (!lines.length) return null;
  return { title: lines[0]!.slice(0, 120), hypothesis: lines.slice(1).join(" ").slice(0, 1000) };
}

export function tail(text: string, lines = 15): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}
