import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import type { NoiseFloor } from "../../src/ledger/types.js";
import type { RunEvent } from "../../src/orchestrator/events.js";
import { noiseRun, type StartOptions, startRun } from "../../src/orchestrator/index.js";
import type { ProposalResult, Researcher } from "../../src/researchers/researcher.js";
import { makeRepo } from "../helpers.js";

/**
 * score = (X − 3)² + |Y| + 0.05 · noise(seed), the noise fixed by AR_SEED: paired seeds
 * cancel it exactly. Z has no effect at all. The held-out metric prefers X near 1.
 */
function noisyTask(extraYaml = "") {
  return makeRepo({
    "autoresearch.yaml": [
      "editable: [train.mjs]",
      "protected: [evaluate.mjs]",
      "run: node train.mjs",
      "budget: 5s",
      "metric: { name: score, goal: minimize }",
      extraYaml,
    ].join("\n"),
    "train.mjs": [
      'import { score, heldout } from "./evaluate.mjs";',
      "const X = 1;",
      "// Y and Z are further knobs; Z does nothing.",
      "const Y = 0.5;",
      "",
      "const Z = 1;",
      "const seed = Number(process.env.AR_SEED);",
      "const noise = Math.sin(seed * 12.9898) * 0.05;",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: this is the fixture's own source
      'if (process.argv[2] === "heldout") console.log(`---\\nscore: ${heldout(X)}`);',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: this is the fixture's own source
      "else console.log(`---\\nscore: ${score(X, Y, Z) + noise}`);",
      "",
    ].join("\n"),
    "evaluate.mjs":
      "export const score = (x, y, z) => (x - 3) ** 2 + Math.abs(y) + 0 * z;\nexport const heldout = (x) => (x - 1) ** 2;\n",
    "program.md": "Make score small.\n",
  });
}

function scripted(edits: ((wt: string) => string)[]): Researcher {
  return {
    name: "scripted",
    async propose(request): Promise<ProposalResult> {
      const edit = edits[request.trial - 1];
      if (!edit) return { ok: false, reason: "out of ideas" };
      return { ok: true, title: edit(request.worktree), hypothesis: "h" };
    },
  };
}

const set = (name: string, value: string) => (wt: string) => {
  const file = join(wt, "train.mjs");
  writeFileSync(
    file,
    readFileSync(file, "utf8").replace(
      new RegExp(`const ${name} = [^;]+;`),
      `const ${name} = ${value};`,
    ),
  );
  return `${name} → ${value}`;
};

async function run(root: string, options: Partial<StartOptions>) {
  const events: RunEvent[] = [];
  const result = await startRun({
    root,
    tag: "t",
    maxTrials: 3,
    lookahead: 0,
    signal: new AbortController().signal,
    emit: (e) => events.push(e),
    ...options,
  });
  const ledger = Ledger.open(root);
  const r = ledger.run("t")!;
  const trials = ledger.trials(r.id);
  const replicates = trials.map((t) => ledger.replicates(t.id));
  const noise = r.noiseJson ? (JSON.parse(r.noiseJson) as NoiseFloor) : null;
  const recorded = ledger.events(r.id);
  ledger.close();
  return { result, trials, replicates, noise, events, recorded };
}

describe("noise-aware judging", () => {
  it("measures the noise floor on the baseline, drops a no-effect change, keeps a real one on paired seeds", async () => {
    const root = noisyTask("judge: { policy: confirm, seeds: 3 }");
    const { trials, replicates, noise } = await run(root, {
      researcher: scripted([set("Z", "2"), set("X", "2")]),
    });
    expect(replicates[0]!.map((r) => r.seed)).toEqual([42, 43, 44]);
    expect(noise).toMatchObject({ trial: 0, seeds: [42, 43, 44] });
    expect(noise!.sd).toBeGreaterThan(0.01);
    expect(trials.map((t) => [t.n, t.verdict])).toEqual([
      [0, "keep"],
      [1, "discard"],
      [2, "keep"],
    ]);
    // The no-effect change: identical to its parent on the paired seed, so not better: one replicate.
    expect(trials[1]!.estimate).toMatchObject({ n: 1, mean: 0 });
    expect(replicates[1]!.map((r) => r.seed)).toEqual([42]);
    expect(trials[2]!.estimate!.mean).toBeCloseTo(3, 5);
    expect(trials[2]!.estimate!.lower).toBeGreaterThan(2.9);
    // A clear win is confirmed on a second seed and stops there.
    expect(replicates[2]!.map((r) => r.seed)).toEqual([42, 43]);
  });

  it("measures the noise floor again on the incumbent when asked", async () => {
    const root = noisyTask("judge: { policy: confirm, seeds: 2 }");
    await run(root, { researcher: scripted([set("X", "2")]), maxTrials: 2 });
    const noise = await noiseRun({
      root,
      seeds: 2,
      signal: new AbortController().signal,
      emit: () => undefined,
    });
    expect(noise).toMatchObject({ trial: 1, seeds: [42, 43, 44, 45] });
    const ledger = Ledger.open(root);
    expect(ledger.replicates(ledger.trial(ledger.run("t")!.id, 1)!.id)).toHaveLength(4);
    ledger.close();
  });
});

describe("the tamper audit", () => {
  it("marks a replicate that writes outside the editable files and declared outputs as tampered, never kept", async () => {
    const root = noisyTask("outputs: [logs/**]");
    const writes = (path: string) => (wt: string) => {
      set("X", "2")(wt);
      const file = join(wt, "train.mjs");
      writeFileSync(
        file,
        `import { writeFileSync, mkdirSync } from "node:fs";\nmkdirSync("logs", { recursive: true });\nwriteFileSync("${path}", "x");\n${readFileSync(file, "utf8")}`,
      );
      return `X → 2, writing ${path}`;
    };
    const { trials } = await run(root, {
      researcher: scripted([writes("cache.json"), writes("logs/run.txt")]),
    });
    expect(trials[1]).toMatchObject({
      verdict: "tampered",
      reason:
        'the replicate changed files outside the editable files and declared outputs: cache.json; if the program writes them on purpose (checkpoints, logs), declare them in autoresearch.yaml: outputs: ["cache.json"]',
    });
    expect(trials[2]!.verdict).toBe("keep");
  });
});

describe("held-out verification", () => {
  it("checks every new incumbent and flags a keep whose held-out metric got worse", async () => {
    const root = noisyTask("verify: node train.mjs heldout");
    const { trials, events, recorded } = await run(root, {
      researcher: scripted([set("X", "2")]),
      maxTrials: 2,
    });
    expect(trials[0]!.verify).toMatchObject({
      metric: 0,
      previous: null,
      diverged: false,
      outcome: "ok",
    });
    expect(trials[1]).toMatchObject({ verdict: "keep", verifyMetric: 1 });
    expect(trials[1]!.verify).toMatchObject({ metric: 1, previous: 0, diverged: true });
    expect(events).toContainEqual(
      expect.objectContaining({ type: "verify", n: 1, diverged: true }),
    );
    expect(recorded.map((e) => e.kind)).toContain("verify-diverged");
  });
});
