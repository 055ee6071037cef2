import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { pendingCarries } from "../../src/orchestrator/swarm.js";
import { tempDir } from "../helpers.js";

describe("wins the swarm's line refused", () => {
  it("are carried still after a stop, unless a trial carried them already", () => {
    const ledger = Ledger.open(tempDir());
    const run = ledger.createRun({
      tag: "s",
      taskName: "t",
      taskJson: "{}",
      metric: "score",
      goal: "minimize",
      baseCommit: "b".repeat(40),
      branch: "autoresearch/s",
      researcher: "mutate",
      judge: "greedy",
      seed: 42,
      maxTrials: null,
    });
    const trial = (n: number, rebaseOf: number | null = null) => {
      const t = ledger.createTrial({
        runId: run.id,
        n,
        baseline: n === 0,
        parentCommit: run.baseCommit,
        researcher: "mutate",
        rebaseOf,
      });
      ledger.setTrialCommit(t.id, {
        commit: `${n}`.repeat(40),
        commitMs: 1,
        linesAdded: 1,
        linesRemoved: 0,
      });
      return t;
    };
    trial(0);
    const refused = [trial(1), trial(2), trial(3)];
    for (const t of refused) ledger.event(run.id, t.id, "carry");
    // #1 was carried by #4 before the stop; #2 and #3 were not.
    trial(4, 1);
    ledger.event(run.id, refused[2]!.id, "carry");
    expect(pendingCarries(ledger, run.id).map((t) => t.n)).toEqual([2, 3]);
    ledger.close();
  });
});
