/**
 * Slot busy fraction with many slots and a slow researcher. 16 local slots run replicates
 * of fixed duration T (a real `sleep`); the researcher needs 0.3·T per proposal (a model's
 * latency), so slots stay busy only if proposals are prepared while slots run. The same
 * setup with no lookahead (each trial proposes, then runs: a strictly sequential
 * propose-then-run loop per slot) is the baseline.
 *
 *   npm run bench -- pipeline [T seconds] [trials]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Ledger } from "../src/ledger/ledger.js";
import { startRun } from "../src/orchestrator/index.js";
import { createMutateResearcher } from "../src/researchers/mutate.js";
import type { Researcher } from "../src/researchers/researcher.js";

const T = Number(process.argv[2] ?? 4);
const TRIALS = Number(process.argv[3] ?? 160);
const SLOTS = 16;

function makeTask(): string {
  const root = mkdtempSync(join(tmpdir(), "ar-pipeline-"));
  writeFileSync(
    join(root, "autoresearch.yaml"),
    [
      "editable: [train.py]",
      // A constant metric: nothing is kept, so no win is rebased and every trial is a proposal.
      `run: 'sleep ${T} && echo --- && echo score: 1'`,
      "metric: { name: score, goal: maximize }",
      `budget: ${T}s`,
    ].join("\n"),
  );
  writeFileSync(
    join(root, "train.py"),
    `${Array.from({ length: 30 }, (_, i) => `CONST_${i} = ${i + 1}`).join("\n")}\n`,
  );
  execFileSync(
    "/bin/sh",
    ["-c", "git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm task"],
    { cwd: root },
  );
  return root;
}

/** mutate, slowed down to a model's pace. */
function slowResearcher(delayMs: number): Researcher {
  const inner = createMutateResearcher();
  return {
    name: "slow-mutate",
    async propose(request) {
      await new Promise((r) => setTimeout(r, delayMs));
      return inner.propose(request);
    },
  };
}

async function measure(lookahead: number) {
  const root = makeTask();
  try {
    const started = Date.now();
    await startRun({
      root,
      tag: "bench",
      researcher: slowResearcher(0.3 * T * 1000),
      maxTrials: TRIALS,
      executor: { kind: "local", slots: SLOTS },
      lookahead,
      signal: new AbortController().signal,
      emit: () => undefined,
    });
    const ended = Date.now();
    const ledger = Ledger.open(root);
    const trials = ledger.trials(ledger.run("bench")!.id);
    const replicates = trials
      .flatMap((t) => ledger.replicates(t.id))
      .filter((r) => r.runningAt && r.finishedAt);
    ledger.close();
    const baseline = trials.find((t) => t.baseline)!.id;
    const work = replicates.filter((r) => r.trialId !== baseline);
    // While there is work for every slot: from the first replicate after the baseline (which
    // runs alone, since every trial is judged against it) to the start of the last replicate
    // (after it, slots idle for want of trials, not of proposals).
    const from = Math.min(...work.map((r) => r.runningAt!));
    const to = Math.max(...work.map((r) => r.runningAt!));
    const busyWithin = work.reduce(
      (sum, r) => sum + Math.max(0, Math.min(r.finishedAt!, to) - Math.max(r.runningAt!, from)),
      0,
    );
    const busy = replicates.reduce((sum, r) => sum + (r.finishedAt! - r.runningAt!), 0);
    return {
      trials: trials.length,
      replicates: replicates.length,
      seconds: (ended - started) / 1000,
      busy_fraction: Number((busyWithin / (SLOTS * (to - from))).toFixed(3)),
      // From the start of the run to its end: the baseline alone, the first proposals and the
      // last replicates finishing one by one included.
      busy_fraction_whole_run: Number((busy / (SLOTS * (ended - started))).toFixed(3)),
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const pipelined = await measure(SLOTS);
const sequential = await measure(0);
const result = {
  date: new Date().toISOString(),
  machine: `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, node ${process.version}`,
  slots: SLOTS,
  replicate_seconds: T,
  proposal_seconds: 0.3 * T,
  pipelined,
  sequential_baseline: sequential,
};
console.log(JSON.stringify(result, null, 2));
writeFileSync(
  join(import.meta.dirname, "results", `pipeline-${result.date.slice(0, 10)}.json`),
  `${JSON.stringify(result, null, 2)}\n`,
);
