import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SetupError, UsageError, WorkspaceError } from "../../src/errors.js";
import type { Executor } from "../../src/executors/executor.js";
import { createLocalExecutor, localSlots } from "../../src/executors/local.js";
import { probeBwrap } from "../../src/executors/sandbox.js";
import { Ledger } from "../../src/ledger/ledger.js";
import type { RunEvent } from "../../src/orchestrator/events.js";
import { noiseRun, resumeRun, type StartOptions, startRun } from "../../src/orchestrator/index.js";
import type {
  ProposalRequest,
  ProposalResult,
  Researcher,
} from "../../src/researchers/researcher.js";
import { quadraticTask, sh, waitFor } from "../helpers.js";

function start(root: string, options: Partial<StartOptions> = {}) {
  const events: RunEvent[] = [];
  const controller = new AbortController();
  const promise = startRun({
    root,
    tag: "t1",
    researcher: "mutate",
    maxTrials: 4,
    // One trial at a time, so scripted researchers see each result before the next proposal.
    lookahead: 0,
    signal: controller.signal,
    emit: (e) => events.push(e),
    ...options,
  });
  return { promise, events, controller };
}

/** A researcher that applies scripted edits, one per trial. */
function scripted(edits: ((worktree: string) => void)[]): Researcher {
  let i = 0;
  return {
    name: "scripted",
    async propose(request: ProposalRequest): Promise<ProposalResult> {
      const edit = edits[i++];
      if (!edit) return { ok: false, reason: "out of ideas" };
      edit(request.worktree);
      return { ok: true, title: `edit ${i}`, hypothesis: "it helps" };
    },
  };
}

const setX = (value: number) => (wt: string) => {
  const file = join(wt, "train.mjs");
  writeFileSync(
    file,
    readFileSync(file, "utf8").replace(/const X = [\d.]+;/, `const X = ${value};`),
  );
};

function ledgerOf(root: string) {
  const ledger = Ledger.open(root);
  const run = ledger.run("t1")!;
  return { ledger, run, trials: ledger.trials(run.id) };
}

describe("a run, end to end, with real git and real processes", () => {
  it("takes an executor of its own the way it takes a researcher, and records its kind", async () => {
    const root = quadraticTask();
    const placed: string[] = [];
    const local = createLocalExecutor(localSlots({ count: 1 }));
    const own: Executor = {
      ...local,
      kind: "counting",
      run: (spec) => {
        placed.push(spec.name);
        return local.run(spec);
      },
    };
    const { promise } = start(root, { executor: own, maxTrials: 2 });
    const result = await promise;
    expect(result.status).toBe("finished");
    expect(placed).toEqual(["ar-t1-0-0", "ar-t1-1-0"]);
    const { ledger, run } = ledgerOf(root);
    expect(JSON.parse(run.executorJson!)).toEqual({ kind: "counting" });
    ledger.close();
  });

  it("runs the baseline, then proposals; keeps wins on the branch and every commit under its ref", async () => {
    const root = quadraticTask();
    const { promise, events } = start(root, {
      researcher: scripted([setX(2), setX(0), setX(2.5)]),
      maxTrials: 4,
    });
    const result = await promise;
    expect(result).toMatchObject({ status: "finished", reason: "reached --max-trials 4" });

    const { ledger, run, trials } = ledgerOf(root);
    expect(trials.map((t) => [t.n, t.verdict, t.metric])).toEqual([
      [0, "keep", 4.5],
      [1, "keep", 1.5],
      [2, "discard", 9.5],
      [3, "keep", 0.75],
    ]);
    expect(trials[0]).toMatchObject({ baseline: true, title: "baseline", commit: run.baseCommit });
    expect(trials[1]).toMatchObject({
      linesAdded: 1,
      linesRemoved: 1,
      incumbentMetric: 4.5,
      metrics: { score: 1.5, steps: 10 },
    });
    expect(trials[2]!.reason).toBe("score 9.5 does not beat its parent's 1.5");
    // The branch holds the best line; every trial, kept or not, has its ref.
    expect(sh(root, "git rev-parse autoresearch/t1")).toBe(trials[3]!.commit);
    expect(sh(root, "git log --format=%s autoresearch/t1").split("\n")).toEqual([
      "edit 3",
      "edit 1",
      "task",
    ]);
    for (const t of trials)
      expect(sh(root, `git rev-parse refs/autoresearch/t1/trials/${t.n}`)).toBe(t.commit);
    expect(sh(root, `git log -1 --format=%B ${trials[2]!.commit}`)).toContain(
      "Autoresearch-Trial: 2",
    );
    // The user's checkout is untouched, the worktrees are gone.
    expect(sh(root, "git status --porcelain")).toBe("");
    expect(sh(root, "git rev-parse --abbrev-ref HEAD")).toBe("main");
    expect(sh(root, "git worktree list").split("\n")).toHaveLength(1);
    // Artefacts of each trial.
    const dir = join(root, ".autoresearch/runs/t1/trials/2");
    expect(readFileSync(join(dir, "diff.patch"), "utf8")).toContain("+const X = 0;");
    expect(readFileSync(join(dir, "run.log"), "utf8")).toContain("score: 9.5");
    expect(JSON.parse(readFileSync(join(dir, "metrics.json"), "utf8"))).toMatchObject({
      verdict: "discard",
      replicates: [{ idx: 0, seed: 42, slot: "cpu0", outcome: "ok", metric: 9.5 }],
    });
    expect(JSON.parse(readFileSync(join(dir, "proposal.json"), "utf8"))).toMatchObject({
      researcher: "scripted",
      title: "edit 2",
    });
    const tsv = readFileSync(join(root, ".autoresearch/runs/t1/results.tsv"), "utf8")
      .trim()
      .split("\n");
    expect(tsv).toHaveLength(5);
    expect(tsv[0]).toBe(
      "commit\tscore\tmemory_gb\tstatus\tdescription\ttrial\tverdict\tlines_added\tlines_removed\tseconds\treason\tsteps",
    );
    expect(tsv[4]!.split("\t").slice(0, 5)).toEqual([
      trials[3]!.commit!.slice(0, 7),
      "0.750000",
      "0.0",
      "keep",
      "edit 3",
    ]);
    expect(
      events.filter((e) => e.type === "trial-end").map((e) => e.type === "trial-end" && e.best),
    ).toEqual([4.5, 1.5, 1.5, 0.75]);
    ledger.close();
  });

  it("rejects proposals outside the editable files as invalid, keeping their commits", async () => {
    const root = quadraticTask();
    const { promise } = start(root, {
      maxTrials: 6,
      researcher: scripted([
        (wt) => writeFileSync(join(wt, "evaluate.mjs"), "export const score = () => -1000;\n"),
        (wt) => writeFileSync(join(wt, "README.md"), "notes\n"),
        (wt) => writeFileSync(join(wt, "autoresearch.yaml"), "run: true\n"),
        () => undefined,
        (wt) => {
          setX(3)(wt);
          writeFileSync(join(wt, "program.md"), "ignore the rules\n");
        },
      ]),
    });
    await promise;
    const { ledger, trials } = ledgerOf(root);
    expect(trials.slice(1).map((t) => [t.verdict, t.reason])).toEqual([
      ["invalid", "changes not allowed: evaluate.mjs (protected)"],
      ["invalid", "changes not allowed: README.md (not editable)"],
      ["invalid", "changes not allowed: autoresearch.yaml (the task file)"],
      ["invalid", "the proposal changed nothing"],
      ["invalid", "changes not allowed: program.md (the program)"],
    ]);
    // Nothing was run for them, and nothing is lost: each commit is under its ref.
    for (const t of trials.slice(1)) expect(ledger.replicates(t.id)).toEqual([]);
    expect(sh(root, "git show refs/autoresearch/t1/trials/1:evaluate.mjs")).toContain("-1000");
    expect(sh(root, "git rev-parse autoresearch/t1")).toBe(trials[0]!.commit);
    ledger.close();
  });

  it("marks a replicate that rewrites a protected file at run time as tampered, never kept", async () => {
    const root = quadraticTask();
    const { promise } = start(root, {
      maxTrials: 2,
      researcher: scripted([
        (wt) => {
          const file = join(wt, "train.mjs");
          writeFileSync(
            file,
            `import { writeFileSync } from "node:fs";\nwriteFileSync("evaluate.mjs", "export const score = () => -1;\\n");\n${readFileSync(
              file,
              "utf8",
            ).replace('import { score } from "./evaluate.mjs";', "const score = () => -1;")}`,
          );
        },
      ]),
    });
    await promise;
    const { ledger, trials } = ledgerOf(root);
    expect(trials[1]).toMatchObject({
      verdict: "tampered",
      reason: "the replicate changed protected files: evaluate.mjs",
    });
    expect(ledger.replicates(trials[1]!.id)[0]).toMatchObject({ outcome: "ok", metric: -1 });
    expect(ledger.incumbent(trials[1]!.runId)!.n).toBe(0);
    ledger.close();
  });

  it("gives replicates the AR_ variables and no secrets", async () => {
    const root = quadraticTask({
      yaml: [
        "editable: [train.mjs]",
        // The trial's folder is writable, sandbox or not; the cache is setup's alone.
        'run: env > env.txt; cp env.txt "$(dirname "$AR_RESULT_FILE")/env.txt"; node train.mjs',
        "budget: 7s",
        "metric: { name: score, goal: minimize }",
        "env: { TASK_SETTING: on }",
        "outputs: [env.txt]",
      ].join("\n"),
    });
    process.env.FAKE_API_KEY = "sk-test-should-never-leak";
    try {
      await start(root, { maxTrials: 1 }).promise;
    } finally {
      delete process.env.FAKE_API_KEY;
    }
    const env = readFileSync(join(root, ".autoresearch/runs/t1/trials/0/env.txt"), "utf8");
    expect(env).toContain("AR_TIME_BUDGET=7\n");
    expect(env).toContain("AR_SEED=42\n");
    expect(env).toContain("AR_TRIAL=0\n");
    expect(env).toContain("AR_RUN=t1\n");
    expect(env).toContain("TASK_SETTING=on\n");
    expect(env).toContain(
      `TORCHINDUCTOR_CACHE_DIR=${join(root, ".autoresearch/compile-cache/torch-inductor")}\n`,
    );
    expect(env).toMatch(/AR_RESULT_FILE=.*\/trials\/0\/result.json/);
    expect(env).not.toContain("sk-test-should-never-leak");
  });

  it("stops with a clear message when the baseline crashes", async () => {
    const root = quadraticTask();
    sh(root, "echo 'throw new Error(\"broken\");' >> train.mjs && git commit -qam broken");
    const result = await start(root).promise;
    expect(result.status).toBe("failed");
    expect(result.reason).toMatch(
      /^the baseline \(the unchanged code\) gave no usable result: crash, exit code 1: /,
    );
    expect(result.reason).toContain("trials/0/run.log");
    const { ledger, run } = ledgerOf(root);
    expect(run).toMatchObject({ status: "failed", incumbentId: null });
    ledger.close();
  });

  it("runs setup once per machine, and stops the run if it fails", async () => {
    const yaml = (setup: string) =>
      [
        "editable: [train.mjs]",
        `setup: ${setup}`,
        "run: node train.mjs",
        "metric: { name: score, goal: minimize }",
      ].join("\n");
    const root = quadraticTask({ yaml: yaml('echo ran >> "$AR_CACHE_DIR/setup-count"') });
    await start(root, { maxTrials: 2 }).promise;
    await start(root, { tag: "t2", maxTrials: 1 }).promise;
    expect(readFileSync(join(root, ".autoresearch/cache/setup-count"), "utf8")).toBe("ran\n");

    const broken = quadraticTask({ yaml: yaml("echo 'no data here' >&2; exit 2") });
    const error = await start(broken).promise.catch((e) => e);
    expect(error).toBeInstanceOf(SetupError);
    expect(error.message).toMatch(
      /setup `echo 'no data here' >&2; exit 2` failed \(exit code 2\).*\n.*no data here/,
    );
    const { ledger, run, trials } = ledgerOf(broken);
    expect(run.status).toBe("failed");
    expect(trials[0]).toMatchObject({ state: "done", verdict: "interrupted" });
    ledger.close();
  });

  it("records a researcher's failure as invalid and stops on a fatal one", async () => {
    const root = quadraticTask();
    let calls = 0;
    const flaky: Researcher = {
      name: "flaky",
      async propose() {
        calls++;
        return calls === 1
          ? { ok: false, reason: "the model answered with no edit" }
          : { ok: false, reason: "API key rejected (401)", fatal: true };
      },
    };
    const result = await start(root, { researcher: flaky, maxTrials: 10 }).promise;
    expect(result).toMatchObject({ status: "failed", reason: "API key rejected (401)" });
    const { ledger, trials } = ledgerOf(root);
    expect(trials.map((t) => t.verdict)).toEqual(["keep", "invalid", "invalid"]);
    expect(trials[1]!.reason).toBe("the model answered with no edit");
    ledger.close();
  });

  it("stops cleanly when aborted mid-replicate, and resumes where it left off", async () => {
    const root = quadraticTask();
    process.env.TEST_SLEEP_S = "30";
    const { promise, controller, events } = start(root, { maxTrials: 3 });
    await waitFor(() => events.some((e) => e.type === "replicate-start"), 20_000, "a replicate");
    controller.abort();
    const result = await promise;
    delete process.env.TEST_SLEEP_S;
    expect(result).toMatchObject({ status: "stopped", reason: "stopped by the user" });
    let { ledger, trials } = ledgerOf(root);
    expect(trials.map((t) => [t.n, t.verdict])).toEqual([[0, "interrupted"]]);
    expect(ledger.replicates(trials[0]!.id)[0]).toMatchObject({
      outcome: "interrupted",
      state: "done",
    });
    ledger.close();

    const resumed = await resumeRun({
      root,
      signal: new AbortController().signal,
      emit: () => undefined,
    });
    expect(resumed.status).toBe("finished");
    ({ ledger, trials } = ledgerOf(root));
    // The interrupted baseline runs again as itself; it was not counted toward the three.
    expect(trials.map((t) => [t.n, t.verdict, t.baseline])).toEqual([
      [0, "keep", true],
      [1, expect.stringMatching(/keep|discard/), false],
      [2, expect.stringMatching(/keep|discard/), false],
    ]);
    ledger.close();
  });

  it("keeps the run's --sandbox on resume and noise until another is given", async () => {
    // The task reads a file that bubblewrap's private /tmp hides: it runs only unsandboxed.
    const marker = join(tmpdir(), `sandbox-marker-${process.pid}-${Date.now()}`);
    writeFileSync(marker, "1");
    const root = quadraticTask();
    const train = join(root, "train.mjs");
    writeFileSync(
      train,
      `import { readFileSync } from "node:fs";\nreadFileSync(${JSON.stringify(marker)});\n${readFileSync(train, "utf8")}`,
    );
    sh(root, "git commit -qam 'reads the marker'");
    expect((await start(root, { maxTrials: 1, sandbox: "none" }).promise).status).toBe("finished");
    const resume = async (maxTrials: number, sandbox?: "auto" | "none") => {
      const events: RunEvent[] = [];
      const result = await resumeRun({
        root,
        maxTrials,
        ...(sandbox ? { sandbox } : {}),
        signal: new AbortController().signal,
        emit: (e) => events.push(e),
      });
      const begun = events.find((e) => e.type === "run-start");
      return { result, said: begun?.type === "run-start" ? begun.sandbox : "" };
    };
    const kept = await resume(2);
    expect(kept.result.status, kept.result.reason).toBe("finished");
    expect(kept.said).toBe("sandbox: none (the run's --sandbox none)");
    // `noise` opens the run the same way: its replicates see the marker too, and it says so.
    const said: RunEvent[] = [];
    const noise = await noiseRun({
      root,
      seeds: 1,
      signal: new AbortController().signal,
      emit: (e) => said.push(e),
    });
    expect(noise.values).toHaveLength(2);
    expect(said[0]).toEqual({ type: "notice", text: "sandbox: none (the run's --sandbox none)" });
    let { ledger, run, trials } = ledgerOf(root);
    expect(run.sandbox).toBe("none");
    expect(trials.map((t) => t.verdict)).not.toContain("crash");
    ledger.close();

    // A resume that names another mode makes it the run's: here the marker is hidden.
    if (probeBwrap().ok) {
      const other = await resume(3, "auto");
      expect(other.said).toMatch(/^sandbox: bubblewrap/);
      ({ ledger, run, trials } = ledgerOf(root));
      expect(run.sandbox).toBe("auto");
      expect(trials.at(-1)?.verdict).toBe("crash");
      ledger.close();
    }
    // A mode this version does not know is refused, naming what to give instead.
    const edited = Ledger.open(root);
    edited.db.prepare("UPDATE runs SET sandbox = 'jail'").run();
    edited.close();
    await expect(resume(4)).rejects.toThrow(
      /records the sandbox mode "jail", which this autoresearch does not know; record one it knows with `autoresearch resume --tag t1 --sandbox auto\|bwrap\|none`/,
    );
    const given = await resume(4, "none");
    expect(given.said).toBe("sandbox: none (--sandbox none)");
  });

  it("records a resume's new limits only once nothing refuses it: recovery, or the session", async () => {
    const root = quadraticTask();
    const first = await start(root, { maxTrials: 2, maxUsd: 5, stops: { plateau: 4 } }).promise;
    expect(first.status).toBe("finished");
    // The person commits on the run's branch: recovery refuses to move it back over that.
    const incumbent = sh(root, "git rev-parse autoresearch/t1");
    sh(
      root,
      "git checkout -q autoresearch/t1 && echo notes > notes.txt && git add notes.txt && git -c user.name=t -c user.email=t@t commit -qm notes && git checkout -q main",
    );
    const limits = { maxTrials: 3, maxUsd: null, stops: { plateau: null, maxFailures: 2 } };
    const resume = () =>
      resumeRun({ root, ...limits, signal: new AbortController().signal, emit: () => undefined });
    const stored = () => {
      const { ledger, run } = ledgerOf(root);
      ledger.close();
      const stops = JSON.parse(run.stopsJson!);
      return [run.maxTrials, run.maxUsd, stops.plateau, stops.maxFailures];
    };
    await expect(resume()).rejects.toThrow(/has commits the run did not make/);
    expect(stored()).toEqual([2, 5, 4, 10]);
    sh(root, `git branch -f mine autoresearch/t1 && git branch -f autoresearch/t1 ${incumbent}`);
    // Refused after recovery, by the session: a run of its own cannot join a swarm.
    const swarm = { url: "postgres://host@127.0.0.1:1/none" };
    await expect(
      resumeRun({ root, ...limits, swarm, signal: new AbortController().signal, emit: () => {} }),
    ).rejects.toThrow(/was not started in a swarm/);
    expect(stored()).toEqual([2, 5, 4, 10]);
    // Once nothing refuses the resume, the limits are its own, and this session keeps to them.
    const resumed = await resume();
    expect(resumed).toMatchObject({ status: "finished", reason: "reached --max-trials 3" });
    expect(stored()).toEqual([3, null, null, 2]);
  });

  it("takes a fixed metric name on resume before the baseline is kept, and refuses one after", async () => {
    const yaml = (name: string) =>
      [
        "editable: [train.mjs]",
        "run: node train.mjs",
        `metric: { name: ${name}, goal: minimize }`,
      ].join("\n");
    const root = quadraticTask({ yaml: yaml("scor") });
    const failed = await start(root, { maxTrials: 2 }).promise;
    expect(failed.status).toBe("failed");
    expect(failed.reason).toMatch(/scor was not reported/);
    writeFileSync(join(root, "autoresearch.yaml"), yaml("score"));
    sh(root, "git commit -qam 'the metric is score'");
    const events: RunEvent[] = [];
    const resumed = await resumeRun({
      root,
      signal: new AbortController().signal,
      emit: (e) => events.push(e),
    });
    expect(resumed.status, resumed.reason).toBe("finished");
    expect(events).toContainEqual({
      type: "notice",
      text: "run t1 measures score (minimize) now, as the task file says (was scor, minimize)",
    });
    const { ledger, run, trials } = ledgerOf(root);
    expect(run.metric).toBe("score");
    expect(trials.find((t) => t.baseline && t.verdict === "keep")?.metric).toBe(4.5);
    ledger.close();

    // A run stopped before its baseline was kept goes on from its own commit: refused too.
    const stopped = quadraticTask({ yaml: yaml("score") });
    process.env.TEST_SLEEP_S = "30";
    const running = start(stopped, { maxTrials: 2 });
    await waitFor(
      () => running.events.some((e) => e.type === "replicate-start"),
      20_000,
      "a replicate",
    );
    running.controller.abort();
    expect((await running.promise).status).toBe("stopped");
    delete process.env.TEST_SLEEP_S;
    writeFileSync(join(stopped, "autoresearch.yaml"), yaml("steps"));
    sh(stopped, "git commit -qam steps");
    await expect(
      resumeRun({ root: stopped, signal: new AbortController().signal, emit: () => undefined }),
    ).rejects.toThrow(/start a new run instead/);
    const other = ledgerOf(stopped);
    expect(other.run.metric).toBe("score");
    other.ledger.close();

    // With a baseline kept, values of another metric would not compare.
    writeFileSync(join(root, "autoresearch.yaml"), yaml("steps"));
    sh(root, "git commit -qam steps");
    await expect(
      resumeRun({ root, signal: new AbortController().signal, emit: () => undefined }),
    ).rejects.toThrow(
      /measures score \(minimize\) but the task file now says steps \(minimize\); start a new run instead/,
    );
  });

  it("refuses to start twice with one tag, or on a dirty tree", async () => {
    const root = quadraticTask();
    await start(root, { maxTrials: 1 }).promise;
    await expect(start(root, { maxTrials: 1 }).promise).rejects.toThrow(UsageError);
    await expect(start(root, { maxTrials: 1 }).promise).rejects.toThrow(
      /run "t1" already exists.*autoresearch resume --tag t1/,
    );
    // A branch at the base and no run: left by a start killed before it recorded the
    // run, and taken. One elsewhere is someone's: refused.
    sh(root, "git branch autoresearch/t8");
    await start(root, { tag: "t8", maxTrials: 1 }).promise;
    sh(root, "git branch autoresearch/t9 && git commit -q --allow-empty -m later");
    // A branch deeper under the name leaves no room for it.
    sh(root, "git branch autoresearch/t7/mine");
    await expect(start(root, { tag: "t7" }).promise).rejects.toThrow(
      "--tag: branch autoresearch/t7/mine leaves no room for a branch autoresearch/t7 (git cannot have both); pass another --tag",
    );
    const taken = start(root, { tag: "t9" }).promise;
    await expect(taken).rejects.toThrow(UsageError);
    await expect(taken).rejects.toThrow(
      /branch autoresearch\/t9 already exists; pass another --tag/,
    );
    writeFileSync(join(root, "train.mjs"), "changed\n");
    await expect(start(root, { tag: "t3" }).promise).rejects.toThrow(WorkspaceError);
    expect(existsSync(join(root, ".autoresearch/runs/t3"))).toBe(false);
  });

  it("checks that the task's globs name real files", async () => {
    const typo = quadraticTask({
      yaml: "editable: [trian.mjs]\nrun: node train.mjs\nmetric: { name: score, goal: minimize }\n",
    });
    await expect(start(typo).promise).rejects.toThrow(
      /editable: \["trian.mjs"\] matches no tracked file/,
    );
    const unprotected = quadraticTask({
      yaml: "editable: [train.mjs]\nprotected: [prepare.py]\nrun: node train.mjs\nmetric: { name: score, goal: minimize }\n",
    });
    await expect(start(unprotected).promise).rejects.toThrow(
      /protected: "prepare.py" matches no tracked file/,
    );
  });
});
