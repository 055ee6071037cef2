import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { promotions } from "../../src/ledger/promotions.js";
import { promoteRun, startRun } from "../../src/orchestrator/index.js";
import { formatTransfer } from "../../src/report/transfer.js";
import type { ProposalResult, Researcher } from "../../src/researchers/researcher.js";
import { makeRepo } from "../helpers.js";

/** A task whose metric is a known function of A and B, with a small seeded noise (±0.01). */
function task(interaction: number): string {
  return makeRepo({
    "autoresearch.yaml": [
      "run: node train.mjs",
      "editable: [train.mjs]",
      "metric: { name: score, goal: minimize }",
      "stages: [{ name: small }, { name: large }]",
    ].join("\n"),
    "train.mjs": [
      "const A = 0;",
      "// A line apart, so that taking out one change does not conflict with the other.",
      "",
      "const B = 0;",
      "const seed = Number(process.env.AR_SEED);",
      "const noise = (((seed * 7919) % 100) - 50) / 5000;",
      `const score = 10 - 2 * A - 3 * B + ${interaction} * A * B + noise;`,
      'console.log("---");',
      'console.log("score: " + score);',
    ].join("\n"),
  });
}

/** Keeps A = 1, then B = 1. */
function researcher(): Researcher {
  const edits = ["A", "B"];
  return {
    name: "scripted",
    async propose(request): Promise<ProposalResult> {
      const name = edits[request.trial - 1]!;
      const file = join(request.worktree, "train.mjs");
      writeFileSync(
        file,
        readFileSync(file, "utf8").replace(`const ${name} = 0;`, `const ${name} = 1;`),
      );
      return { ok: true, title: `${name} 0 → 1`, hypothesis: "h" };
    },
  };
}

async function transfer(interaction: number) {
  const root = task(interaction);
  const options = { root, signal: new AbortController().signal, emit: () => undefined };
  await startRun({ ...options, tag: "t", researcher: researcher(), maxTrials: 3, lookahead: 0 });
  return promoteRun({ ...options, tag: "t", seeds: 3 });
}

describe("the transfer table's additivity", () => {
  it("measures the baseline's tree once when leaving out the only change gives it again", async () => {
    const root = task(0);
    const options = { root, signal: new AbortController().signal, emit: () => undefined };
    await startRun({ ...options, tag: "t", researcher: researcher(), maxTrials: 2, lookahead: 0 });
    const table = await promoteRun({ ...options, tag: "t", seeds: 3 });
    expect(table.rows.map((r) => r.title)).toEqual(["A 0 → 1"]);
    expect(table.stacked).toBeCloseTo(2, 1);
    // The row is the baseline's measurement read again, not a fourth arm of its own.
    expect(table.rows[0]!.atStage).toBe(table.stacked);
    expect(formatTransfer(table)).toContain(": one change: nothing to add up");
    const ledger = Ledger.open(root);
    const [promotion] = promotions.list(ledger, ledger.run("t")!.id);
    const labels = promotions.evaluations(ledger, promotion!.id).map((e) => e.label);
    ledger.close();
    expect(new Set(labels)).toEqual(new Set(["baseline", "incumbent"]));
  });

  it("takes its noise from replicates of the same arm, so large effects are not counted as noise", async () => {
    // Stacked 4, single effects 1 and 2: they interact by far more than the noise of 0.01.
    const interacting = await transfer(1);
    expect(interacting.stacked).toBeCloseTo(4, 1);
    expect(interacting.sum).toBeCloseTo(3, 1);
    expect(interacting.test?.spread).toBeLessThan(0.05);
    expect(interacting.test?.from).toMatch(/^pooled within arms/);
    expect(interacting.additive).toBe(false);
  });

  it("still calls effects that add up additive", async () => {
    const additive = await transfer(0);
    expect(additive.stacked).toBeCloseTo(5, 1);
    expect(additive.sum).toBeCloseTo(5, 1);
    expect(additive.additive).toBe(true);
  });
});
