import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { scrubbedEnv } from "../../src/executors/env.js";
import { type ProcessSpec, runProcess } from "../../src/executors/process.js";
import { sandboxHint } from "../../src/executors/sandbox.js";
import { classify } from "../../src/metrics/outcome.js";
import { isAlive } from "../../src/util/proc.js";
import { FIXTURES, tempDir, waitFor } from "../helpers.js";

const task = {
  metric: { name: "score", goal: "minimize" as const, parser: "summary" as const, pattern: null },
  secondary: [],
  constraints: [],
};

function spec(command: string, extra: Partial<ProcessSpec> = {}): ProcessSpec {
  const dir = tempDir();
  return {
    command,
    cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", CHILD_PID_FILE: join(dir, "child.pid") },
    logPath: join(dir, "run.log"),
    logLimit: 1_000_000,
    timeoutMs: 10_000,
    killGraceMs: 1000,
    ...extra,
  };
}

async function run(command: string, extra: Partial<ProcessSpec> = {}) {
  const s = spec(command, extra);
  const result = await runProcess(s);
  const log = readFileSync(s.logPath, "utf8");
  return { result, log, outcome: classify(result, log, task), spec: s };
}

/** A process that exited 0 after printing what a test gives as its log. */
const FINISHED = {
  pid: 1,
  exitCode: 0,
  signal: null,
  timedOut: false,
  aborted: false,
  durationMs: 10,
  logBytes: 100,
  truncated: false,
  spawnError: null,
};

const childPid = (s: ProcessSpec) => Number(readFileSync(s.env.CHILD_PID_FILE!, "utf8"));

describe("runProcess and outcome classes", () => {
  it("ok: exit 0 with the metric after ---", async () => {
    const { outcome, result } = await run("echo hello; echo ---; echo 'score: 0.5'");
    expect(result.exitCode).toBe(0);
    expect(outcome).toMatchObject({ outcome: "ok", metric: 0.5, reason: null });
  });

  it("crash: a non-zero exit code, with the last line of the log in the reason", async () => {
    const { outcome } = await run("echo 'Traceback: boom' >&2; exit 3");
    expect(outcome.outcome).toBe("crash");
    expect(outcome.reason).toBe("exit code 3: Traceback: boom");
  });

  it("crash: death by a signal is named", async () => {
    const { outcome, result } = await run("kill -SEGV $$");
    expect(result.signal).toBe("SIGSEGV");
    expect(outcome.outcome).toBe("crash");
    expect(outcome.reason).toMatch(/^killed by SIGSEGV/);
  });

  it("crash: a command that cannot start", async () => {
    const { outcome } = await run("echo never", { cwd: "/nonexistent/folder" });
    expect(outcome.outcome).toBe("crash");
    expect(outcome.reason).toMatch(/could not start/);
  });

  it("no_metric and bad_metric", async () => {
    expect((await run("echo ---; echo 'other: 1'")).outcome).toMatchObject({
      outcome: "no_metric",
      reason: "score was not reported",
    });
    expect((await run("echo ---; echo 'score: nan'")).outcome).toMatchObject({
      outcome: "bad_metric",
      metric: null,
    });
    expect((await run("echo ---; echo 'score: -inf'")).outcome.outcome).toBe("bad_metric");
  });

  it("constraint: a violated bound, or a bounded metric that was not reported", async () => {
    const bounded = {
      ...task,
      constraints: [{ text: "mem < 10", metric: "mem", op: "<" as const, value: 10 }],
    };
    const s = spec("echo ---; echo 'score: 1'; echo 'mem: 12'");
    const r = await runProcess(s);
    expect(classify(r, readFileSync(s.logPath, "utf8"), bounded)).toMatchObject({
      outcome: "constraint",
      metric: 1,
      reason: "constraint violated: mem < 10: mem was 12",
    });
    const quiet = spec("echo ---; echo 'score: 1'");
    const q = await runProcess(quiet);
    expect(classify(q, readFileSync(quiet.logPath, "utf8"), bounded).reason).toContain(
      "mem was not reported",
    );
  });

  it("timeout: the process group gets SIGTERM at the timeout", async () => {
    const started = Date.now();
    const { outcome, result, log } = await run(`node ${join(FIXTURES, "forever.mjs")}`, {
      timeoutMs: 1500,
    });
    expect(result.timedOut).toBe(true);
    expect(outcome.outcome).toBe("timeout");
    expect(Date.now() - started).toBeLessThan(1500 + 1000 + 2000);
    expect(log).toContain("[autoresearch] timeout after 1.5s");
  });

  it("timeout: a child that ignores SIGTERM is ended with SIGKILL after the grace period, with its whole group", async () => {
    const started = Date.now();
    const {
      outcome,
      result,
      spec: s,
    } = await run(`exec sh ${join(FIXTURES, "ignore-term.sh")}`, {
      timeoutMs: 1000,
      killGraceMs: 1500,
    });
    const elapsed = Date.now() - started;
    expect(outcome.outcome).toBe("timeout");
    expect(result.signal).toBe("SIGKILL");
    // The grace period was honoured before SIGKILL.
    expect(elapsed).toBeGreaterThanOrEqual(2400);
    expect(isAlive(childPid(s))).toBe(false);
  });

  it("children left behind by a finished command are killed", async () => {
    const { outcome, spec: s } = await run(`sh ${join(FIXTURES, "orphan.sh")}`);
    expect(outcome).toMatchObject({ outcome: "ok", metric: 1.5 });
    await waitFor(() => !isAlive(childPid(s)), 5000, "the orphan to die");
  });

  it("a child that left the process group (setsid) is found by the replicate's mark and killed", async () => {
    // The pause lets setsid take effect before the command exits.
    const leaver = `setsid sleep 1000 & echo $! > "$CHILD_PID_FILE"; sleep 0.3; echo ---; echo 'score: 2'`;
    const { outcome, log, spec: s } = await run(leaver);
    expect(outcome).toMatchObject({ outcome: "ok", metric: 2 });
    // It really left: its group is its own, so the group kill could not reach it.
    expect(isAlive(childPid(s))).toBe(false);
    expect(log).toContain("ended 1 process that left the replicate's process group");

    // On timeout too, and a process of another replicate is left alone.
    const other = await runProcess(spec("sleep 3"));
    const slow = run(`${leaver}; sleep 1000`, { timeoutMs: 500, killGraceMs: 200 });
    const [timedOut] = await Promise.all([slow, other]);
    expect(timedOut.outcome.outcome).toBe("timeout");
    expect(isAlive(childPid(timedOut.spec))).toBe(false);
    expect(other.exitCode).toBe(0);
  });

  it("a log flood is capped at log_limit, keeping the head and the tail with the metric", async () => {
    const {
      outcome,
      result,
      spec: s,
      log,
    } = await run(`sh ${join(FIXTURES, "flood.sh")}`, { logLimit: 200_000 });
    expect(result.logBytes).toBeGreaterThan(50_000_000);
    expect(result.truncated).toBe(true);
    expect(statSync(s.logPath).size).toBeLessThan(200_000 + 200);
    expect(log.startsWith("first line\n")).toBe(true);
    expect(log).toMatch(/\[autoresearch\] \d+ bytes of output omitted \(log_limit\)/);
    expect(outcome).toMatchObject({ outcome: "ok", metric: 2.25 });
  });

  it("a flood is capped as it is written: the log never holds more than log_limit", async () => {
    const s = spec(
      "yes 'a line of flood output' | head -c 300000000; echo; echo ---; echo 'score: 1'",
      {
        logLimit: 100_000,
        timeoutMs: 60_000,
      },
    );
    let largest = 0;
    const watch = setInterval(() => {
      if (existsSync(s.logPath)) largest = Math.max(largest, statSync(s.logPath).size);
    }, 1);
    const result = await runProcess(s);
    clearInterval(watch);
    expect(result.logBytes).toBe(300_000_000 + "\n---\nscore: 1\n".length);
    expect(largest).toBeGreaterThan(50_000);
    // The limit and the note that says how much was left out.
    expect(largest).toBeLessThan(100_000 + 80);
    const log = readFileSync(s.logPath, "utf8");
    expect(log).toContain(
      `[autoresearch] ${result.logBytes - 100_000} bytes of output omitted (log_limit)`,
    );
    expect(classify(result, log, task)).toMatchObject({ outcome: "ok", metric: 1 });
  });

  it("a file larger than max_file_size cannot be written, with no sandbox too", async () => {
    const { result, spec: s } = await run(
      'head -c 3000000 /dev/zero > big.bin; echo "exit $?"; wc -c < big.bin',
      { maxFileSize: 1024 * 1024 },
    );
    expect(statSync(join(s.cwd, "big.bin")).size).toBe(1024 * 1024);
    expect(readFileSync(s.logPath, "utf8")).toMatch(/exit [1-9]\d*\n1048576\n/);
    expect(result.exitCode).toBe(0);
  });

  it("a log writer killed by its replicate leaves a note saying so, and the run goes on", async () => {
    const killWriter = [
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion
      'for p in /proc/[0-9]*; do tr "\\0" "\\n" < $p/environ 2>/dev/null | grep -qx "AR_LOG_WRITER=$AR_PROCESS" && kill -9 ${p#/proc/}; done',
      "sleep 0.3",
      "echo after",
    ].join("; ");
    const { result, log } = await run(killWriter);
    expect(result.pid).not.toBeNull();
    expect(log).toMatch(
      /the log writer ended early \(SIGKILL\): what the command wrote after that was lost/,
    );
  });

  it("a stop that came before the start: nothing is started only to be ended", async () => {
    const controller = new AbortController();
    controller.abort();
    const s = spec("touch started", { signal: controller.signal });
    const result = await runProcess(s);
    expect(result).toMatchObject({ aborted: true, pid: null, spawnError: null });
    expect(existsSync(join(s.cwd, "started"))).toBe(false);
    expect(readFileSync(s.logPath, "utf8")).toContain("stopped by the harness before it started");
    expect(classify(result, "", task).outcome).toBe("interrupted");
  });

  it("a metric missing from a log cut at log_limit says so, and what to do", () => {
    const cut = { ...FINISHED, truncated: true };
    expect(classify(cut, "lots of output\n", task).reason).toMatch(
      /score was not reported.*the log reached log_limit .* raise log_limit, print the summary last, or write it to AR_RESULT_FILE/,
    );
    expect(classify(FINISHED, "lots of output\n", task).reason).not.toContain("log_limit");
  });

  it("a crash from the file-size limit names it, with the sandbox or without", () => {
    const log = "OSError: [Errno 27] File too large\n";
    expect(sandboxHint(log, true)).toBe("a file reached sandbox.max_file_size");
    expect(sandboxHint(log, false)).toMatch(/max_file_size, which applies without the sandbox too/);
    expect(sandboxHint("bash: line 1: 12 File size limit exceeded\n", false)).not.toBeNull();
    // The sandbox's other causes do not apply without it.
    expect(sandboxHint("open: No such file or directory\n", false)).toBeNull();
  });

  it("abort: the run is stopped and the replicate is interrupted", async () => {
    const controller = new AbortController();
    const s = spec(`node ${join(FIXTURES, "forever.mjs")}`, { signal: controller.signal });
    let pid = 0;
    const pending = runProcess({ ...s, onSpawn: (p) => (pid = p) });
    await waitFor(
      () => existsSync(s.logPath) && readFileSync(s.logPath, "utf8").includes("still running"),
      10_000,
    );
    controller.abort();
    const result = await pending;
    expect(result.aborted).toBe(true);
    expect(classify(result, readFileSync(s.logPath, "utf8"), task).outcome).toBe("interrupted");
    expect(isAlive(pid)).toBe(false);
  });
});

describe("the replicate environment", () => {
  it("drops credentials and stale AR_ variables, keeps the rest", () => {
    const env = scrubbedEnv({
      PATH: "/bin",
      ANTHROPIC_API_KEY: "sk-ant-secret",
      OPENAI_API_KEY: "sk-secret",
      GITHUB_TOKEN: "ghp_secret",
      HF_TOKEN: "hf_secret",
      AWS_SECRET_ACCESS_KEY: "aws",
      DB_PASSWORD: "pw",
      AR_SEED: "9",
      TOKENIZERS_PARALLELISM: "false",
      HOME: "/root",
    });
    expect(env).toEqual({ PATH: "/bin", TOKENIZERS_PARALLELISM: "false", HOME: "/root" });
  });

  it("a real process sees no key", async () => {
    const env = { ...scrubbedEnv({ ...process.env, MY_API_KEY: "sk-should-not-leak" }) };
    const { log } = await run("env", { env });
    expect(log).not.toContain("sk-should-not-leak");
    expect(log).toContain("PATH=");
  });
});
