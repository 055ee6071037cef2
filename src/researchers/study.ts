import { type ChildProcessWithoutNullStreams, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { ResearcherError } from "../errors.js";

/** The Optuna helper shipped with the package: JSON requests on stdin, answers on stdout. */
const HELPER = fileURLToPath(new URL("../../libexec/tune.py", import.meta.url));

const INSTALL =
  "install it with `apt install python3-optuna` (Debian, Ubuntu) or `pip install optuna`, or set researcher.python to a Python that has it";

/** A Python, where none is set: the one on PATH, then the system's (which has Debian's packages). */
const CANDIDATES = ["python3", "/usr/bin/python3"];

const found = new Map<string, Promise<string>>();

/**
 * The first Python that imports Optuna (and `cmaes` for that sampler): `python` when set,
 * else the candidates. Throws a ResearcherError naming each one tried and why it failed.
 */
export function pythonWithOptuna(python: string | undefined, sampler: string): Promise<string> {
  const key = `${python ?? ""}\0${sampler}`;
  let result = found.get(key);
  if (!result) {
    result = (async () => {
      const tried: string[] = [];
      for (const candidate of python ? [python] : CANDIDATES) {
        const why = await importsOptuna(candidate, sampler);
        if (why === null) return candidate;
        tried.push(`${candidate}: ${why}`);
      }
      throw new ResearcherError(
        `tune needs Python 3 with Optuna${sampler === "cmaes" ? " and cmaes" : ""}; ${INSTALL}. Tried ${tried.join("; ")}`,
      );
    })();
    found.set(key, result);
    result.catch(() => found.delete(key));
  }
  return result;
}

function importsOptuna(python: string, sampler: string): Promise<string | null> {
  const modules = sampler === "cmaes" ? "optuna, sqlalchemy, cmaes" : "optuna, sqlalchemy";
  return new Promise((resolve) => {
    if (python.includes("/") && !existsSync(python)) return resolve("not found");
    execFile(
      python,
      ["-c", `import ${modules}; print(optuna.__version__)`],
      { env: helperEnv(), timeout: 60_000 },
      (error, stdout, stderr) => {
        if (!error) {
          const [major] = stdout.trim().split(".").map(Number);
          resolve(
            major !== undefined && major >= 3 ? null : `Optuna ${stdout.trim()} is older than 3.0`,
          );
        } else if ((error as NodeJS.ErrnoException).code === "ENOENT") resolve("not found");
        else resolve(stderr.trim().split("\n").at(-1) || error.message);
      },
    );
  });
}

/** What the helper sees of the environment: enough to run Python, no credential. */
function helperEnv(): NodeJS.ProcessEnv {
  const keep = ["PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR"];
  return {
    ...Object.fromEntries(keep.flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : []))),
    PYTHONDONTWRITEBYTECODE: "1",
  };
}

export type Answer = Record<string, unknown> & { ok: boolean; error?: string };

/** The longest one request may take; an ask over thousands of trials takes seconds. */
const REQUEST_MS = 120_000;

/**
 * One helper process holding an Optuna study. Requests are answered in order, one at a
 * time. The process does not keep the harness alive while idle, and ends with it (stdin
 * closes).
 */
export class Study {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly answers: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private stderr = "";
  private exited = false;

  constructor(python: string) {
    this.child = spawn(python, [HELPER], { env: helperEnv(), stdio: ["pipe", "pipe", "pipe"] });
    this.child.stderr.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
    this.child.on("error", (error) => {
      this.stderr += `\n${error.message}`;
    });
    this.child.on("close", () => {
      this.exited = true;
      this.waiting?.(null);
    });
    this.child.stdin.on("error", () => {});
    createInterface({ input: this.child.stdout }).on("line", (line) => {
      if (this.waiting) this.waiting(line);
      else this.answers.push(line);
    });
    this.idle(true);
  }

  /** Sends one request; rejects when the helper dies or answers with an error. */
  request(body: Record<string, unknown>): Promise<Answer> {
    const next = this.queue.then(() => this.exchange(body));
    this.queue = next.catch(() => {});
    return next;
  }

  close(): void {
    this.child.stdin.end();
  }

  private async exchange(body: Record<string, unknown>): Promise<Answer> {
    if (this.exited) throw new Error(this.why());
    this.idle(false);
    try {
      this.child.stdin.write(`${JSON.stringify(body)}\n`);
      let timer: NodeJS.Timeout | undefined;
      const line =
        this.answers.shift() ??
        (await new Promise<string | null>((resolve) => {
          this.waiting = resolve;
          timer = setTimeout(() => {
            this.stderr += `\nno answer to "${body.op}" in ${REQUEST_MS / 1000} s`;
            this.child.kill("SIGKILL");
          }, REQUEST_MS);
        }));
      clearTimeout(timer);
      this.waiting = null;
      if (line === null) throw new Error(this.why());
      const answer = JSON.parse(line) as Answer;
      if (!answer.ok) throw new Error(`the Optuna helper: ${answer.error}`);
      return answer;
    } finally {
      this.idle(true);
    }
  }

  private why(): string {
    const tail = this.stderr.trim().split("\n").slice(-5).join("\n");
    return `the Optuna helper exited${tail ? `: ${tail}` : ""}`;
  }

  /** Idle, the helper's pipes do not hold the event loop open. */
  private idle(idle: boolean): void {
    for (const handle of [this.child, this.child.stdout, this.child.stderr, this.child.stdin] as {
      ref?(): void;
      unref?(): void;
    }[])
      idle ? handle.unref?.() : handle.ref?.();
  }
}
