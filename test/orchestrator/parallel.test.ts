import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseGpus } from "../../src/executors/gpus.js";
import { Ledger } from "../../src/ledger/ledger.js";
import type { ReplicateRow } from "../../src/ledger/types.js";
import type { RunEvent } from "../../src/orchestrator/events.js";
import { resumeRun, type StartOptions, startRun } from "../../src/orchestrator/index.js";
import { carriedTitle } from "../../src/orchestrator/trial/propose.js";
import type {
  ProposalRequest,
  ProposalResult,
  Researcher,
} from "../../src/researchers/researcher.js";
import { QUADRATIC_YAML, quadraticTask, sh, waitFor } from "../helpers.js";

afterEach(() => {
  delete process.env.TEST_SLEEP_S;
  delete process.env.TEST_SLEEP_TRIAL;
});

async function run(root: string, options: Partial<StartOptions>) {
  const events: RunEvent[] = [];
  const result = await startRun({
    root,
    tag: "p",
    researcher: "mutate",
    maxTrials: 6,
    signal: new AbortController().signal,
    emit: (e) => events.push(e),
    ...options,
  });
  const ledger = Ledger.open(root);
  const runRow = ledger.run("p")!;
  const trials = ledger.trials(runRow.id);
  const replicates = trials.flatMap((t) => ledger.replicates(t.id));
  const recorded = ledger.events(runRow.id);
  ledger.close();
  return { result, trials, replicates, events, recorded };
}

/** Run "p"'s trials as its ledger holds them now. */
function trialsOf(root: string) {
  const ledger = Ledger.open(root);
  const trials = ledger.trials(ledger.run("p")!.id);
  ledger.close();
  return trials;
}

/** The largest number of replicates running at one moment, and whether any slot ran two at once. */
function overlap(replicates: ReplicateRow[]) {
  const points = replicates.flatMap((r) => [
    { at: r.runningAt!, d: 1 },
    { at: r.finishedAt!, d: -1 },
  ]);
  points.sort((a, b) => a.at - b.at || a.d - b.d);
  let now = 0;
  let most = 0;
  for (const p of points) {
    now += p.d;
    most = Math.max(most, now);
  }
  const bySlot = new Map<string, ReplicateRow[]>();
  for (const r of replicates) bySlot.set(r.slot!, [...(bySlot.get(r.slot!) ?? []), r]);
  let doubled = false;
  for (const rows of bySlot.values()) {
    rows.sort((a, b) => a.runningAt! - b.runningAt!);
    for (let i = 1; i < rows.length; i++)
      if (rows[i]!.runningAt! < rows[i - 1]!.finishedAt!) doubled = true;
  }
  return { most, doubled, slots: [...bySlot.keys()].sort() };
}

describe("parallel slots", () => {
  it("runs replicates on every CPU slot at once, never two on one slot", async () => {
    process.env.TEST_SLEEP_S = "1";
    const root = quadraticTask();
    const { result, replicates, trials } = await run(root, {
      executor: { kind: "local", slots: 3 },
      maxTrials: 10,
    });
    expect(result.status).toBe("finished");
    // Confirmations of wins made on an older incumbent included.
    expect(trials.length).toBe(10);
    const o = overlap(replicates);
    expect(o.most).toBe(3);
    expect(o.doubled).toBe(false);
    expect(o.slots).toEqual(["cpu0", "cpu1", "cpu2"]);
  });

  it("gives each GPU slot its own CUDA_VISIBLE_DEVICES, grouped by resources.gpus", async () => {
    const root = quadraticTask({
      yaml: [
        "editable: [train.mjs]",
        'run: echo "gpus=$CUDA_VISIBLE_DEVICES"; node train.mjs',
        "metric: { name: score, goal: minimize }",
        "resources: { gpus: 2 }",
      ].join("\n"),
    });
    const { replicates } = await run(root, {
      executor: { kind: "local", gpus: ["0", "1", "2", "3"] },
      maxTrials: 5,
    });
    for (const r of replicates) {
      const log = readFileSync(r.logPath, "utf8");
      const seen = /gpus=(\S+)/.exec(log)![1];
      expect(seen).toBe(r.gpus);
      expect(r.slot).toBe(`gpu${seen!.replace(",", "+")}`);
    }
    expect(new Set(replicates.map((r) => r.gpus))).toEqual(new Set(["0,1", "2,3"]));
  });

  it("sets aside a GPU slot whose replicates crash at start while others succeed, and says so", async () => {
    const root = quadraticTask({
      yaml: [
        "editable: [train.mjs]",
        `run: 'if [ "$CUDA_VISIBLE_DEVICES" = "1" ]; then echo "CUDA error, no device" >&2; exit 3; fi; sleep 0.3; node train.mjs'`,
        "metric: { name: score, goal: minimize }",
        "resources: { gpus: 1 }",
      ].join("\n"),
    });
    const { result, replicates, events, recorded } = await run(root, {
      executor: { kind: "local", gpus: ["0", "1"] },
      maxTrials: 12,
    });
    expect(result.status).toBe("finished");
    const onBad = replicates.filter((r) => r.slot === "gpu1");
    expect(onBad.length).toBeGreaterThanOrEqual(3);
    // A slot is judged only on crashes while another slot succeeds: once a replicate on
    // gpu0 has succeeded during gpu1's streak, gpu1 gets at most three more.
    const streakStart = onBad[0]!.finishedAt!;
    const goodDuringStreak = Math.min(
      ...replicates
        .filter((r) => r.slot === "gpu0" && r.outcome === "ok" && r.finishedAt! > streakStart)
        .map((r) => r.finishedAt!),
    );
    expect(onBad.filter((r) => r.runningAt! > goodDuringStreak).length).toBeLessThanOrEqual(3);
    expect(events).toContainEqual(
      expect.objectContaining({ type: "slot-set-aside", slot: "gpu1" }),
    );
    expect(recorded.find((e) => e.kind === "slot-set-aside")?.data).toMatchObject({
      slot: "gpu1",
      reason: expect.stringMatching(
        /replicates in a row crashed within 60s of starting on GPU 1 while other slots succeeded/,
      ),
    });
    // After that, everything ran on the good card.
    const last = replicates.slice(-3);
    expect(last.every((r) => r.slot === "gpu0")).toBe(true);
  });

  it("with overlap, the next trial prepares beside the one training and trains after it, with mutate too", async () => {
    process.env.TEST_SLEEP_S = "0.8";
    // The program's part: say when it started, prepare, then ask at the gate and wait.
    const gate = [
      'import { Socket } from "node:net";',
      "console.log(`spawned ${Date.now()}`);",
      "await new Promise((r) => setTimeout(r, 300));",
      "const s = new Socket({ fd: Number(process.env.AR_GATE), readable: true, writable: true });",
      'await new Promise((r) => { s.once("data", r); s.write("r"); });',
      "s.destroy();",
    ].join("\n");
    const root = quadraticTask({
      yaml: [
        ...QUADRATIC_YAML.filter((l) => !l.startsWith("run:")),
        "run: node gate.mjs && node train.mjs",
        "overlap: true",
      ].join("\n"),
      extra: { "gate.mjs": gate },
    });
    const { result, replicates, events } = await run(root, {
      executor: { kind: "local", slots: 1 },
      maxTrials: 6,
    });
    expect(result.status, result.reason).toBe("finished");
    // CPU slots share their cores with a neighbour's start: the person is told.
    const notices = events.flatMap((e) => (e.type === "notice" ? [e.text] : []));
    expect(notices.some((text) => /^overlap: true on CPU slots/.test(text))).toBe(true);
    expect(overlap(replicates).doubled).toBe(false);
    const ok = replicates.filter((r) => r.outcome === "ok");
    expect(ok.length).toBeGreaterThanOrEqual(6);
    const spawned = (r: ReplicateRow) =>
      Number(/spawned (\d+)/.exec(readFileSync(r.logPath, "utf8"))![1]);
    ok.sort((a, b) => a.runningAt! - b.runningAt!);
    // The first proposal prepared beside the baseline...
    expect(spawned(ok[1]!)).toBeLessThan(ok[0]!.finishedAt!);
    // ...and after it, every next replicate started before the one before it ended...
    const early = ok.slice(2).filter((r, i) => spawned(r) < ok[i + 1]!.finishedAt!);
    expect(early.length).toBeGreaterThanOrEqual(3);
    // ...and its time on the slot counts from its turn, not from its start.
    for (const r of early) expect(r.durationMs!).toBeLessThan(r.finishedAt! - spawned(r) - 200);
  });

  it("parses --gpus", () => {
    expect(parseGpus("0,1,3")).toEqual(["0", "1", "3"]);
    expect(parseGpus("all", () => ["0", "1"])).toEqual(["0", "1"]);
    expect(() => parseGpus("0,x")).toThrow(/is not "all" or a list of distinct GPU indices/);
    expect(() => parseGpus("1,1")).toThrow(/distinct/);
    expect(() => parseGpus("all", () => [])).toThrow(/lists no GPU/);
  });
});

/** An edit that returns its title, or null for no idea. */
type Edit = (wt: string, r: ProposalRequest) => string | null | Promise<string | null>;

/** A slow researcher (like a model) that applies the scripted edit of each trial number (from 1). */
function scripted(edits: Edit[], seen: ProposalRequest[] = []): Researcher {
  return {
    name: "scripted",
    async propose(request): Promise<ProposalResult> {
      // As the researcher saw it when asked: the trials in flight are read when asked.
      seen.push({ ...request });
      await new Promise((r) => setTimeout(r, 100 * request.trial));
      const title = (await edits[request.trial - 1]?.(request.worktree, request)) ?? null;
      if (title === null) return { ok: false, reason: "out of ideas" };
      return { ok: true, title, hypothesis: "h" };
    },
  };
}

/** No idea, said once `until` has resolved: it holds a slot and its place in the limit till then. */
const idle = (until: Promise<void>) => async () => {
  await until;
  return null;
};

/** Resolves once trial `n` has ended, as the run's events tell. */
function ended(n: number) {
  let resolve = () => {};
  const done = new Promise<void>((r) => {
    resolve = r;
  });
  const emit = (e: RunEvent) => {
    if (e.type === "trial-end" && e.n === n) resolve();
  };
  return { done, emit };
}

const set = (name: string, value: number) => (wt: string) => {
  const file = join(wt, "train.mjs");
  writeFileSync(
    file,
    readFileSync(file, "utf8").replace(
      new RegExp(`const ${name} = [\\d.]+;`),
      `const ${name} = ${value};`,
    ),
  );
  return `${name} → ${value}`;
};

describe("wins on an older incumbent", () => {
  it("are judged against their own parent, merged onto the new incumbent and confirmed there", async () => {
    // Trial 2 finishes after trial 1 was kept: both started from the baseline.
    process.env.TEST_SLEEP_S = "2";
    process.env.TEST_SLEEP_TRIAL = "2";
    const root = quadraticTask();
    // #3, begun once #1 is kept, leaves room in the limit for #2's confirmation.
    const second = ended(2);
    const { trials } = await run(root, {
      researcher: scripted([set("X", 2), set("Y", 0), idle(second.done)]),
      executor: { kind: "local", slots: 2 },
      lookahead: 0,
      maxTrials: 5,
      emit: second.emit,
    });
    expect(trials.map((t) => [t.n, t.verdict, t.researcher, t.metric, t.rebaseOf])).toEqual([
      [0, "keep", "baseline", 4.5, null],
      [1, "keep", "scripted", 1.5, null],
      [2, "discard", "scripted", 4, null],
      [3, "invalid", "scripted", null, null],
      [4, "keep", "rebase", 1, 2],
    ]);
    expect(trials[2]!.reason).toBe(
      "score 4 beats its parent's 4.5, but #1 was kept meanwhile; merged onto it for confirmation",
    );
    expect(trials[4]!.title).toBe("Y → 0 (rebased from #2)");
    expect(trials[4]!.parentCommit).toBe(trials[1]!.commit);
    const tip = sh(root, "git show autoresearch/p:train.mjs");
    expect(tip).toContain("const X = 2;");
    expect(tip).toContain("const Y = 0;");
  });

  it("are not carried past --max-trials: the run records at most that many trials", async () => {
    // #1 and #2 fill the limit with the baseline; #2 wins after #1 was kept.
    process.env.TEST_SLEEP_S = "2";
    process.env.TEST_SLEEP_TRIAL = "2";
    const root = quadraticTask();
    const { result, trials, events } = await run(root, {
      researcher: scripted([set("X", 2), set("Y", 0)]),
      executor: { kind: "local", slots: 2 },
      lookahead: 0,
      maxTrials: 3,
    });
    expect(result).toMatchObject({ status: "finished", reason: "reached --max-trials 3" });
    expect(trials.map((t) => [t.n, t.verdict, t.metric])).toEqual([
      [0, "keep", 4.5],
      [1, "keep", 1.5],
      [2, "discard", 4],
    ]);
    expect(trials[2]!.reason).toBe(
      "score 4 beats its parent's 4.5, but #1 was kept meanwhile; not carried onto it, since the run reached --max-trials 3 (its change stays at refs/autoresearch/p/trials/2)",
    );
    expect(events.filter((e) => e.type === "trial-start")).toHaveLength(3);
    expect(sh(root, "git rev-parse autoresearch/p")).toBe(trials[1]!.commit);
  });

  it("stopped after their carry is decided and before its trial begins, are carried by resume", async () => {
    process.env.TEST_SLEEP_S = "2";
    process.env.TEST_SLEEP_TRIAL = "2";
    const root = quadraticTask();
    const second = ended(2);
    const stop = new AbortController();
    const events: RunEvent[] = [];
    const { result } = await run(root, {
      researcher: scripted([set("X", 2), set("Y", 0), idle(second.done)]),
      executor: { kind: "local", slots: 2 },
      lookahead: 0,
      maxTrials: 6,
      signal: stop.signal,
      // The stop comes as #2's carry is decided: its trial would begin next.
      emit: (e) => {
        events.push(e);
        second.emit(e);
        if (e.type === "trial-end" && e.n === 2) stop.abort();
      },
    });
    expect(result.status).toBe("stopped");
    const stopped = trialsOf(root);
    expect(stopped[2]!.reason).toMatch(/#1 was kept meanwhile; merged onto it for confirmation$/);
    expect(stopped.filter((t) => t.rebaseOf !== null)).toEqual([]);
    expect(events).toContainEqual({
      type: "notice",
      text: "#2 won on an older incumbent and waits to be carried onto the newer one: `autoresearch resume --tag p` carries it",
    });

    const resumed = await resumeRun({
      root,
      tag: "p",
      researcher: scripted([]),
      signal: new AbortController().signal,
      emit: () => {},
    });
    expect(resumed.status, resumed.reason).toBe("finished");
    const carried = trialsOf(root).filter((t) => t.rebaseOf !== null);
    expect(carried.map((t) => [t.rebaseOf, t.verdict, t.metric, t.title])).toEqual([
      [2, "keep", 1, "Y → 0 (rebased from #2)"],
    ]);
  });

  it("are proposed while slots are busy, and researchers see the trials in flight", async () => {
    process.env.TEST_SLEEP_S = "1";
    const root = quadraticTask();
    const seen: ProposalRequest[] = [];
    const edits = [set("X", 2), set("Y", 0.4), set("Y", 0.3), set("Y", 0.2)];
    const { trials, replicates } = await run(root, {
      researcher: scripted(edits, seen),
      executor: { kind: "local", slots: 1 },
      maxTrials: 4,
    });
    // One slot, one proposal ahead: trial 2 was proposed while trial 1 ran...
    const t1 = replicates.find((r) => r.trialId === trials[1]!.id)!;
    expect(trials[2]!.createdAt).toBeLessThan(t1.finishedAt!);
    // ...so trial 3's researcher saw it waiting.
    expect(seen.find((r) => r.trial === 3)!.inFlight).toContain("Y → 0.4");
  });

  it("that conflict with the new incumbent are handed back to a researcher to re-apply", async () => {
    process.env.TEST_SLEEP_S = "2";
    process.env.TEST_SLEEP_TRIAL = "2";
    const root = quadraticTask();
    const seen: ProposalRequest[] = [];
    const reapply = (wt: string, r: ProposalRequest) => {
      expect(r.reconcile).toMatchObject({ n: 2, title: "X → 2.5" });
      expect(r.reconcile!.patch).toContain("+const X = 2.5;");
      return set("X", 2.5)(wt);
    };
    const second = ended(2);
    const { trials } = await run(root, {
      researcher: scripted([set("X", 2), set("X", 2.5), idle(second.done), reapply], seen),
      executor: { kind: "local", slots: 2 },
      lookahead: 0,
      maxTrials: 5,
      emit: second.emit,
    });
    expect(trials.map((t) => [t.n, t.verdict, t.metric, t.rebaseOf])).toEqual([
      [0, "keep", 4.5, null],
      [1, "keep", 1.5, null],
      [2, "discard", 0.75, null],
      [3, "invalid", null, null],
      [4, "keep", 0.75, 2],
    ]);
    expect(trials[2]!.reason).toMatch(
      /but #1 was kept meanwhile; it conflicts with it, so a researcher re-applies it$/,
    );
    expect(trials[4]!.title).toBe("X → 2.5 (reconciled from #2)");
    expect(sh(root, "git show autoresearch/p:train.mjs")).toContain("const X = 2.5;");
  });
});

describe("trials begun beside the baseline", () => {
  it("use the free slots and are judged against the baseline once it has ended", async () => {
    // Only the baseline is slow: the trials beside it finish first and wait for it.
    process.env.TEST_SLEEP_S = "3";
    process.env.TEST_SLEEP_TRIAL = "0";
    const root = quadraticTask({
      yaml: [...QUADRATIC_YAML, 'setup: sleep 1; echo ran >> "$AR_CACHE_DIR/setup-count"'].join(
        "\n",
      ),
    });
    const { result, trials, replicates, events } = await run(root, {
      executor: { kind: "local", slots: 3 },
      maxTrials: 6,
    });
    expect(result.status, result.reason).toBe("finished");
    const [baseline, ...others] = trials;
    expect(baseline).toMatchObject({ baseline: true, verdict: "keep" });
    // Begun on the baseline before it ended; some measured before it ended too.
    const begun = others.filter((t) => t.createdAt < baseline!.finishedAt!);
    const beside = begun.filter((t) =>
      replicates.some((r) => r.trialId === t.id && r.runningAt! < baseline!.finishedAt!),
    );
    // More than the two slots the baseline left free: a slot whose trial waits to be
    // judged takes the next proposal.
    expect(beside.length).toBeGreaterThan(2);
    for (const t of begun) {
      expect(t.parentCommit).toBe(baseline!.commit);
      expect(t.incumbentMetric).toBe(baseline!.metric);
      expect(t.verdict).toMatch(/^(keep|discard)$/);
    }
    for (const t of beside) {
      expect(t.finishedAt!).toBeGreaterThanOrEqual(baseline!.finishedAt!);
      // Its time is its own, not the wait for the baseline.
      expect(t.runMs!).toBeLessThan(baseline!.runMs! / 2);
      expect(events).toContainEqual({
        type: "notice",
        text: `#${t.n} measured: judged once the baseline has ended`,
      });
    }
    // Nothing new was built on the baseline before those measured beside it were judged
    // (a win re-applied onto one of them is built on that one).
    const judged = Math.max(...beside.map((t) => t.finishedAt!));
    const later = others.filter((t) => !begun.includes(t));
    for (const t of later.filter((t) => t.parentCommit === baseline!.commit))
      expect(t.createdAt).toBeGreaterThanOrEqual(judged);
    // The setup ran once, though two trials needed it at once.
    expect(readFileSync(join(root, ".autoresearch/cache/setup-count"), "utf8")).toBe("ran\n");
  });

  it("are ended and not judged when the baseline fails; after a fix, resume has its whole budget", async () => {
    // The trials beside the baseline would train for 20 s; the baseline fails after 1 s.
    process.env.TEST_SLEEP_S = "20";
    const yaml = (run: string) =>
      [
        ...QUADRATIC_YAML.filter((l) => !/^(run|timeout):/.test(l)),
        `run: '${run}'`,
        "timeout: 60s",
      ].join("\n");
    const root = quadraticTask({
      yaml: yaml(
        'if [ "$AR_TRIAL" = 0 ]; then sleep 1; echo broken >&2; exit 3; fi; node train.mjs',
      ),
    });
    const began = Date.now();
    const { result, trials } = await run(root, {
      executor: { kind: "local", slots: 2 },
      maxTrials: 4,
    });
    expect(Date.now() - began).toBeLessThan(15_000);
    expect(result.status).toBe("failed");
    expect(result.reason).toMatch(/^the baseline \(the unchanged code\) gave no usable result/);
    expect(trials[0]).toMatchObject({ baseline: true, verdict: "crash" });
    const beside = trials.slice(1);
    expect(beside.length).toBeGreaterThanOrEqual(1);
    for (const t of beside)
      expect(t).toMatchObject({
        verdict: "interrupted",
        reason:
          "not judged: the code it changes (the baseline, or a head being adopted) gave no usable result",
      });
    expect(sh(root, "git rev-parse autoresearch/p")).toBe(sh(root, "git rev-parse HEAD"));

    // Fixed and committed: the run starts again from the fix, and the trials not judged
    // neither count toward --max-trials nor run again.
    process.env.TEST_SLEEP_S = "0";
    writeFileSync(join(root, "autoresearch.yaml"), yaml("node train.mjs"));
    sh(root, "git commit -qam fix");
    const resumed = await resumeRun({
      root,
      tag: "p",
      signal: new AbortController().signal,
      emit: () => {},
    });
    expect(resumed.status, resumed.reason).toBe("finished");
    const after = trialsOf(root);
    const fresh = after.filter((t) => t.n > beside.at(-1)!.n);
    expect(fresh[0]).toMatchObject({ baseline: true, verdict: "keep" });
    // The whole limit: the new baseline and three trials (confirmations of wins on an
    // older incumbent among them), each judged.
    expect(fresh.map((t) => t.verdict === "keep" || t.verdict === "discard")).toEqual([
      true,
      true,
      true,
      true,
    ]);
    for (const t of beside)
      expect(after.find((a) => a.id === t.id)).toMatchObject({ verdict: "interrupted" });
  });

  it("stopped with it, go on with it on resume and are judged against it then", async () => {
    process.env.TEST_SLEEP_S = "30";
    process.env.TEST_SLEEP_TRIAL = "0";
    const root = quadraticTask();
    const controller = new AbortController();
    const events: RunEvent[] = [];
    const started = run(root, {
      maxTrials: 2,
      executor: { kind: "local", slots: 2 },
      signal: controller.signal,
      emit: (e) => events.push(e),
    });
    // Trial 1's replicate has ended: it waits for the baseline, which sleeps.
    await waitFor(
      () => events.some((e) => e.type === "replicate-end" && e.n === 1),
      20_000,
      "trial 1's replicate",
    );
    controller.abort();
    const stopped = await started;
    expect(stopped.result.status).toBe("stopped");
    expect(stopped.trials.map((t) => [t.n, t.verdict])).toEqual([
      [0, "interrupted"],
      [1, "interrupted"],
    ]);

    process.env.TEST_SLEEP_S = "1";
    const resumed = await resumeRun({ root, signal: new AbortController().signal, emit: () => {} });
    expect(resumed.status, resumed.reason).toBe("finished");
    const trials = trialsOf(root);
    expect(trials[0]).toMatchObject({ n: 0, verdict: "keep" });
    expect(trials[1]).toMatchObject({ n: 1, incumbentMetric: trials[0]!.metric });
    expect(trials[1]!.verdict).toMatch(/^(keep|discard)$/);
  });
});

describe("a change carried onto a newer incumbent", () => {
  it("says only where it came from last", () => {
    expect(carriedTitle("Y → 0 (rebased from #2) (rebased from #5)")).toBe("Y → 0");
    expect(carriedTitle("Y → 0 (reconciled from #2)")).toBe("Y → 0");
    expect(carriedTitle("from #2 (a note)")).toBe("from #2 (a note)");
    expect(carriedTitle(null)).toBe("");
  });
});
