import { existsSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { initTask } from "../../src/task/init.js";
import { loadTask } from "../../src/task/load.js";
import { makeRepo, quadraticTask, runCli, sh, tempDir, waitFor } from "../helpers.js";
import { startFakeProvider } from "../providers/fake-provider.js";

/** A port nothing listens on: bound once by the system, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function verdicts(root: string, tag: string): (string | null)[] {
  const ledger = Ledger.open(root);
  const trials = ledger.trials(ledger.run(tag)!.id);
  ledger.close();
  return trials.map((t) => t.verdict);
}

describe("a newcomer's first hour, through the real CLI", () => {
  it("a failed baseline says how to go on, and resume starts again from the fixed commit", async () => {
    const root = quadraticTask();
    writeFileSync(
      join(root, "evaluate.mjs"),
      'export const score = () => {\n  throw new Error("typo in evaluate");\n};\n',
    );
    sh(root, "git -c user.name=t -c user.email=t@t commit -qam broken");
    const failed = await runCli(["run", "-C", root, "-t", "b", "-n", "3"]);
    expect(failed.code).toBe(1);
    // The reason is the error, not the runtime's version footer below it.
    expect(failed.stdout).toContain("crash, exit code 1: Error: typo in evaluate");
    expect(failed.stdout).toContain(
      "Fix the task, commit, then `autoresearch resume --tag b`: the run starts again from the new commit",
    );
    const log = /Its log is (\S+)\./.exec(failed.stdout)?.[1];
    expect(log && existsSync(log)).toBe(true);
    // The summary counts the crashed baseline.
    expect(failed.stdout).toMatch(/trials 1 · kept 0 · crashed 1/);

    writeFileSync(
      join(root, "evaluate.mjs"),
      "export const score = (x, y) => (x - 3) ** 2 + Math.abs(y);\n",
    );
    sh(root, "git -c user.name=t -c user.email=t@t commit -qam fixed");
    const resumed = await runCli(["resume", "-C", root, "-t", "b"]);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(
      /run b has no baseline yet: starting again from HEAD [0-9a-f]{7}/,
    );
    expect(verdicts(root, "b").slice(0, 2)).toEqual(["crash", "keep"]);
    const ledger = Ledger.open(root);
    const run = ledger.run("b")!;
    const head = sh(root, "git rev-parse HEAD");
    expect(run.baseCommit).toBe(head);
    ledger.close();
  });

  it("an unreachable provider is refused before the baseline, with the address and what to do", async () => {
    const root = quadraticTask();
    const port = await closedPort();
    const r = await runCli([
      "run",
      "-C",
      root,
      "--researcher",
      "openai-compatible",
      "--base-url",
      `http://127.0.0.1:${port}/v1`,
      "--model",
      "m",
    ]);
    expect(r.code).toBe(7);
    expect(r.stderr).toContain(
      `the openai-compatible API at http://127.0.0.1:${port}/v1 cannot be reached (ECONNREFUSED): start the server or fix --base-url (researcher.base_url), then run again`,
    );
    expect(existsSync(join(root, ".autoresearch", "ledger.db"))).toBe(false);
  });

  it("a provider that goes away mid-run stops it with the provider's error; status shows each reason", async () => {
    const root = quadraticTask({
      yaml: [
        "editable: [train.mjs]",
        "run: node train.mjs",
        "metric: { name: score, goal: minimize }",
        "researcher: { retries: 0 }",
      ].join("\n"),
    });
    const provider = await startFakeProvider("openai", []);
    // No lookahead: the first proposal is asked for once the baseline has ended, not beside it.
    const running = runCli(
      ["run", "-C", root, "-t", "p", "--researcher", "openai-compatible", "--model", "m"].concat(
        "--base-url",
        provider.baseUrl,
        "--lookahead",
        "0",
      ),
      { env: { TEST_SLEEP_S: "2" } },
    );
    // The baseline runs; the provider is gone before the first proposal.
    await waitFor(() => existsSync(join(root, ".autoresearch/runs/p/trials/0/run.log")), 30_000);
    await provider.close();
    const r = await running;
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /run failed: the openai-compatible API cannot be reached after 0 retries: .*ECONNREFUSED/,
    );
    const status = await runCli(["status", "-C", root, "--trials", "5"]);
    expect(status.stdout).toMatch(/#1 +invalid .*cannot be reached/);
  });

  it("a GPU task started without GPU slots is refused, naming --gpus and resources.gpus", async () => {
    const root = quadraticTask({
      yaml: [
        "editable: [train.mjs]",
        "run: node train.mjs",
        "metric: { name: score, goal: minimize }",
        "resources: { gpus: 1 }",
      ].join("\n"),
    });
    const r = await runCli(["run", "-C", root]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      "the task asks for 1 GPU per replicate (resources.gpus) but the run has no GPU slots: add --gpus all (or --gpus 0,1), or set resources.gpus: 0 in the task file to run on the CPU",
    );
    expect(existsSync(join(root, ".autoresearch", "ledger.db"))).toBe(false);
  });

  it("counts invalid trials in the summary line", async () => {
    const root = quadraticTask({
      yaml: [
        "editable: [train.mjs]",
        "run: node train.mjs",
        "metric: { name: score, goal: minimize }",
        'researcher: { kind: command, command: "echo no idea; exit 3" }',
      ].join("\n"),
    });
    const r = await runCli(["run", "-C", root, "-t", "i", "-n", "3"]);
    expect(verdicts(root, "i")).toEqual(["keep", "invalid", "invalid"]);
    expect(r.stdout).toMatch(/trials 3 · kept 0 \(keep rate 0%\) · crashed 0 · invalid 2/);
  });

  it("a mistyped flag's suggestion stays on screen, not pushed off by the whole help", async () => {
    const r = await runCli(["run", "--max-trails", "3"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--max-trails'");
    expect(r.stderr).toContain("(Did you mean --max-trials?)");
    expect(r.stderr).toContain("(add --help to see the options)");
    expect(r.stderr).not.toContain("Options:");
    expect(r.stderr.trim().split("\n").length).toBeLessThanOrEqual(3);
  });

  it("deletes a run only with --yes: its records, refs, branch and folder", async () => {
    const root = quadraticTask();
    expect((await runCli(["run", "-C", root, "-t", "kept", "-n", "2"])).code).toBe(0);
    // A change kept by `try`: on the run's branch only, and named so before it goes.
    sh(root, "sed -i 's/^const X = .*;/const X = 2;/' train.mjs");
    const tried = await runCli(["try", "-C", root, "-t", "gone", "-m", "X 2"]);
    expect(tried.stdout).toContain("keep");
    sh(root, "git checkout -q main");
    const asked = await runCli(["delete", "-C", root, "-t", "gone"]);
    expect(asked.code).toBe(0);
    expect(asked.stdout).toMatch(
      /\n {2}branch autoresearch\/gone, with [1-9]\d* commit\(s\) no other branch holds \(its kept changes\): to keep them, `git branch <name> autoresearch\/gone` first\n/,
    );
    expect(asked.stdout).toContain("nothing was deleted: run again with --yes to delete it");
    expect(sh(root, "git for-each-ref refs/autoresearch/gone/ | wc -l")).toBe("2");

    const done = await runCli(["delete", "-C", root, "-t", "gone", "--yes"]);
    expect(done.code).toBe(0);
    expect(done.stdout).toContain("deleted run gone:");
    expect(sh(root, "git for-each-ref refs/autoresearch/gone/ refs/heads/autoresearch/gone")).toBe(
      "",
    );
    expect(existsSync(join(root, ".autoresearch/runs/gone"))).toBe(false);
    const ledger = Ledger.open(root);
    expect(ledger.runs().map((r) => r.tag)).toEqual(["kept"]);
    ledger.close();
    // The other run is whole: doctor finds nothing wrong.
    const doctor = await runCli(["doctor", "-C", root]);
    expect(doctor.code).toBe(0);
    const again = await runCli(["delete", "-C", root, "-t", "gone", "--yes"]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('--tag: no run "gone" in this task; runs: kept');
  });

  it("warns when the greedy judge keeps a gain smaller than the measured noise", async () => {
    const root = makeRepo({
      "autoresearch.yaml": [
        "run: node train.mjs",
        "editable: [train.mjs]",
        "metric: { name: score, goal: minimize }",
        "judge: { policy: greedy, seeds: 3 }",
        "researcher: { kind: command, command: sh research.sh }",
      ].join("\n"),
      "train.mjs": [
        "const X = 1.0;",
        "// Seeds 42, 43, 44 of the baseline: a noise floor of 0.1.",
        "const noise = [0, 0.1, -0.1][Number(process.env.AR_SEED) % 3];",
        'console.log("---");',
        'console.log("score: " + ((X - 3) ** 2 + noise));',
      ].join("\n"),
      "research.sh": [
        "sed -i 's/X = 1.0;/X = 1.001;/' train.mjs",
        'echo \'{"title": "X 1.0 to 1.001", "hypothesis": "a small step"}\'',
      ].join("\n"),
    });
    const r = await runCli(["run", "-C", root, "-t", "g", "-n", "2"]);
    expect(verdicts(root, "g")).toEqual(["keep", "keep"]);
    expect(r.stdout).toMatch(
      /#1 was kept by the greedy judge for a gain of 0\.003\d*, less than the run's noise \(standard deviation 0\.1\): it may be luck; the confirm judge \(judge: \{ policy: confirm \}\) keeps only gains that clear the noise/,
    );
  });

  it("a failed setup is said once, with what to do, and its trial runs again on resume", async () => {
    const root = quadraticTask({
      yaml: [
        'setup: sh -c "echo this task needs PyTorch >&2; exit 1"',
        "run: node train.mjs",
        "editable: [train.mjs]",
        "metric: { name: score, goal: minimize }",
      ].join("\n"),
    });
    const r = await runCli(["run", "-C", root, "-t", "s", "-n", "2"]);
    expect(r.code).toBe(6);
    const all = r.stdout + r.stderr;
    expect(all.split('this task needs PyTorch >&2; exit 1"` failed').length - 1).toBe(1);
    expect(r.stderr).toContain("fix it, then `autoresearch resume` (the trial runs again)");
    expect(r.stdout).toContain("(stopped: the task's setup failed)");
  });

  it("templates judge with the noise-aware confirm judge by default", async () => {
    for (const name of ["demo", "tiny-lm", "nanogpt"]) {
      const task = loadTask(await initTask(name, join(tempDir(), name)));
      expect(task.judge).toMatchObject({ policy: "confirm", seeds: 3 });
    }
  });

  it("offers --lookahead only where a loop proposes ahead (run, resume), not on noise or promote", async () => {
    for (const command of ["run", "resume"])
      expect((await runCli([command, "--help"])).stdout).toContain("--lookahead");
    for (const command of ["noise", "promote"])
      expect((await runCli([command, "--help"])).stdout).not.toContain("--lookahead");
  });

  it("a stop rule has its own exit code and points at the reasons", async () => {
    const root = quadraticTask({
      yaml: [
        "editable: [train.mjs]",
        "run: node train.mjs",
        "metric: { name: score, goal: minimize }",
        'researcher: { kind: command, command: "echo no idea; exit 3" }',
      ].join("\n"),
    });
    const r = await runCli(["run", "-C", root, "-t", "f", "-n", "9", "--max-failures", "2"]);
    expect(r.code).toBe(8);
    expect(r.stdout).toContain(
      "2 trials in a row failed (2 invalid): see their reasons with `autoresearch status --trials 2`",
    );
  });
});
