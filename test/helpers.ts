import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll } from "vitest";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const FIXTURES = join(ROOT, "test", "fixtures");
export const CLI = join(ROOT, "dist", "cli", "main.js");
/** Debian's interpreter, which sees Debian's torch (the one first on PATH may not). */
export const PYTHON = "/usr/bin/python3";

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary folder, removed after the test file. */
export function tempDir(prefix = "ar-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Live processes whose environment holds `marker` (a value a test put in a task's `env`). */
export function survivors(marker: string): number[] {
  const found: number[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      if (readFileSync(`/proc/${pid}/environ`, "utf8").includes(marker)) found.push(Number(pid));
    } catch {}
  }
  return found;
}

export function sh(cwd: string, command: string): string {
  return execFileSync("/bin/sh", ["-c", command], { cwd, encoding: "utf8" }).trim();
}

/** A real git repository holding `files`, committed once. */
export function makeRepo(files: Record<string, string>): string {
  const root = tempDir("ar-task-");
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  sh(
    root,
    "git -c init.defaultBranch=main init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm task",
  );
  return root;
}

/** The quadratic task's file, line by line, for tests that add a line. */
export const QUADRATIC_YAML = [
  "name: quadratic",
  "editable: [train.mjs]",
  "protected: [evaluate.mjs]",
  "run: node train.mjs",
  "budget: 5s",
  "timeout: 20s",
  "kill_grace: 1s",
  "metric: { name: score, goal: minimize }",
  "secondary: [steps]",
];

/**
 * A task whose metric is a known function of its constants: score = (X - 3)^2 + Y,
 * printed in karpathy/autoresearch's summary format after `sleep` seconds (or
 * $TEST_SLEEP_S, which lets a test change the duration without a commit; with
 * $TEST_SLEEP_TRIAL, only that trial sleeps).
 */
export function quadraticTask(
  options: { yaml?: string; x?: number; sleep?: number; extra?: Record<string, string> } = {},
): string {
  return makeRepo({
    "autoresearch.yaml": options.yaml ?? QUADRATIC_YAML.join("\n"),
    "train.mjs": [
      'import { score } from "./evaluate.mjs";',
      `const X = ${options.x ?? 1.0};`,
      "// Y is a second knob, independent of X (a line apart, so that edits of each merge cleanly).",
      "const Y = 0.5;",
      "const slow = !process.env.TEST_SLEEP_TRIAL || process.env.TEST_SLEEP_TRIAL === process.env.AR_TRIAL;",
      `await new Promise((r) => setTimeout(r, slow ? Number(process.env.TEST_SLEEP_S ?? ${options.sleep ?? 0}) * 1000 : 0));`,
      'console.log("training...");',
      'console.log("---");',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: this is the fixture's own source
      "console.log(`score: ${score(X, Y)}`);",
      'console.log("steps: 10");',
      "",
    ].join("\n"),
    "evaluate.mjs": "export const score = (x, y) => (x - 3) ** 2 + Math.abs(y);\n",
    "program.md": "Make score small.\n",
    ...options.extra,
  });
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a real subprocess. */
export function runCli(
  args: string[],
  options: {
    cwd?: string;
    env?: Record<string, string>;
    timeoutMs?: number;
    /** Ctrl-C, once, when the output so far matches. */
    interruptWhen?: RegExp;
    /** Called with stdout and stderr so far, as each part arrives. */
    watch?: (output: string) => void;
  } = {},
): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let interrupted = false;
    child.stdout.on("data", (d) => {
      stdout += d;
      options.watch?.(stdout + stderr);
      if (!interrupted && options.interruptWhen?.test(stdout)) {
        interrupted = true;
        child.kill("SIGINT");
      }
    });
    child.stderr.on("data", (d) => {
      stderr += d;
      options.watch?.(stdout + stderr);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** The built CLI as a child process, its stdout and stderr gathered in `out`, to signal midway. */
export function startCli(
  args: string[],
  cwd: string,
  env: Record<string, string>,
): ChildProcess & { out: string } {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  }) as ChildProcess & { out: string };
  child.out = "";
  child.stdout!.on("data", (d) => {
    child.out += d;
  });
  child.stderr!.on("data", (d) => {
    child.out += d;
  });
  return child;
}

/** Polls `probe` (sync or async) until it returns something truthy. */
export async function waitFor<T>(
  probe: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  timeoutMs = 30_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
