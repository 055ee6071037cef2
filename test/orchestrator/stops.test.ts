import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { resumeRun, type StartOptions, startRun } from "../../src/orchestrator/index.js";
import type {
  ProposalRequest,
  ProposalResult,
  Researcher,
} from "../../src/researchers/researcher.js";
import { quadraticTask } from "../helpers.js";

/** A researcher that makes the same edit every time (or fails to propose, with null). */
function always(edit: ((worktree: string, n: number) => void) | null): Researcher {
  return {
    name: "always",
    async propose(request: ProposalRequest): Promise<ProposalResult> {
      if (!edit) return { ok: false, reason: "no idea" };
      edit(request.worktree, request.trial);
      return { ok: true, title: `try ${request.trial}`, hypothesis: "maybe" };
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

const crash = (wt: string) => writeFileSync(join(wt, "train.mjs"), "process.exit(3);\n");

async function run(root: string, options: Partial<StartOptions>) {
  const result = await startRun({
    root,
    tag: "s",
    researcher: "mutate",
    maxTrials: 20,
    lookahead: 0,
    signal: new AbortController().signal,
    emit: () => undefined,
    ...options,
  });
  const ledger = Ledger.open(root);
  const trials = ledger.trials(ledger.run("s")!.id);
  ledger.close();
  return { result, trials };
}

describe("budgets and stop rules", () => {
  it("stops after --max-failures trials in a row fail, and a resume gets a fresh allowance", async () => {
    const root = quadraticTask();
    const { result, trials } = await run(root, {
      researcher: always(crash),
      stops: { maxFailures: 3 },
    });
    expect(result.status).toBe("stopped");
    expect(result.reason).toMatch(/^3 trials in a row failed \(3 crash\): .*autoresearch resume/);
    expect(trials.map((t) => t.verdict)).toEqual(["keep", "crash", "crash", "crash"]);

    // Invalid proposals count too; the limit kept with the run applies again.
    const again = await resumeRun({
      root,
      researcher: always(null),
      lookahead: 0,
      signal: new AbortController().signal,
      emit: () => undefined,
    });
    expect(again.status).toBe("stopped");
    expect(again.reason).toMatch(/^3 trials in a row failed \(3 invalid\)/);
    const ledger = Ledger.open(root);
    expect(ledger.trials(ledger.run("s")!.id)).toHaveLength(7);
    ledger.close();
  });

  it("a keep or a discard breaks the streak", async () => {
    const root = quadraticTask();
    const { result, trials } = await run(root, {
      researcher: always((wt, n) => (n % 2 ? crash(wt) : setX(5)(wt))),
      stops: { maxFailures: 2 },
      maxTrials: 7,
    });
    expect(result).toMatchObject({ status: "finished", reason: "reached --max-trials 7" });
    expect(trials.map((t) => t.verdict)).toEqual([
      "keep",
      "crash",
      "discard",
      "crash",
      "discard",
      "crash",
      "discard",
    ]);
  });

  it("finishes on a plateau when asked to", async () => {
    const root = quadraticTask();
    const { result, trials } = await run(root, {
      researcher: always(setX(5)),
      stops: { plateau: 4 },
    });
    expect(result).toMatchObject({
      status: "finished",
      reason: "plateau: no keep in the last 4 trials",
    });
    expect(trials).toHaveLength(5);
  });

  it("counts GPU time at --gpu-hour-usd against --budget-usd", async () => {
    const root = quadraticTask({
      yaml: [
        "editable: [train.mjs]",
        "run: sleep 2; node train.mjs",
        "metric: { name: score, goal: minimize }",
        "resources: { gpus: 1 }",
      ].join("\n"),
    });
    // $3600 per GPU-hour is a dollar a GPU-second: each replicate costs $2 and a little (a
    // slow machine adds to it, never $1 more), so the budget holds one trial and stops after two.
    const { result, trials } = await run(root, {
      executor: { kind: "local", gpus: ["0"] },
      maxUsd: 3,
      stops: { gpuHourUsd: 3600 },
    });
    expect(result.status).toBe("finished");
    expect(result.reason).toMatch(
      /^reached --budget-usd 3: \$0\.0000 on researchers and \$[45]\.\d+ on 0\.00\d GPU-hours$/,
    );
    expect(trials).toHaveLength(2);
  });
});
