import { execFile } from "node:child_process";

/** A git command that failed; carries git's own message. */
export class GitError extends Error {
  constructor(
    readonly args: string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`git ${args.join(" ")} failed: ${stderr.trim() || `exit code ${code}`}`);
    this.name = "GitError";
  }
}

// No git process of the harness runs a command named in the repository's config or hooks
// (a program without the sandbox can write them, and one left behind can do so after its
// run ended, unseen): no hooks, no file-system monitor.
const SAFE_CONFIG = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"];

// Trial commits are made by the harness, so they must not depend on the user's
// identity or signing setup.
const HARNESS_CONFIG = [
  "-c",
  "user.name=autoresearch",
  "-c",
  "user.email=autoresearch@localhost",
  "-c",
  "commit.gpgsign=false",
];

export interface GitOptions {
  input?: string;
  /** Exit codes that are answers rather than failures (e.g. 1 for `diff --quiet`). */
  okCodes?: number[];
  harness?: boolean;
  /** Ends git (SIGTERM) when aborted: a remote that stopped answering must not hold the run. */
  signal?: AbortSignal;
  /** Ends git (SIGTERM) after this many ms without an end. */
  timeoutMs?: number;
  /** Variables added to git's environment (GIT_INDEX_FILE, for a copy of the index). */
  env?: Record<string, string>;
}

export interface GitResult {
  stdout: string;
  code: number;
}

/** Runs git in `cwd`; rejects with GitError unless the exit code is 0 or listed in okCodes. */
export function gitRaw(cwd: string, args: string[], options: GitOptions = {}): Promise<GitResult> {
  const full = [...SAFE_CONFIG, ...(options.harness ? HARNESS_CONFIG : []), ...args];
  return new Promise((resolve, reject) => {
    const child = execFile(
      "git",
      full,
      {
        cwd,
        maxBuffer: 256 * 1024 * 1024,
        env: { ...process.env, GIT_TERMINAL_PROMPT: "0", LC_ALL: "C", ...options.env },
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        if (code !== null && (code === 0 || options.okCodes?.includes(code)))
          resolve({ stdout, code });
        else if (
          error?.killed &&
          options.timeoutMs &&
          !options.signal?.aborted &&
          error.code !== "ERR_CHILD_PROCESS_STDIO_MAXBUFFER"
        )
          reject(new GitError(args, code, `no answer in ${options.timeoutMs / 1000} s`));
        else reject(new GitError(args, code, stderr || (error?.message ?? "")));
      },
    );
    if (options.input !== undefined) {
      // git may exit without reading its input (it failed first): its own error is the one
      // to report, not the broken pipe.
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(options.input);
    }
  });
}

/** Runs git and returns its trimmed standard output. */
export async function git(cwd: string, args: string[], options: GitOptions = {}): Promise<string> {
  return (await gitRaw(cwd, args, options)).stdout.trim();
}
