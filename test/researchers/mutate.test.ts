import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { findConstants } from "../../src/researchers/constants.js";
import { createMutateResearcher, mutateValue } from "../../src/researchers/mutate.js";
import type { ProposalRequest } from "../../src/researchers/researcher.js";
import { parseTask } from "../../src/task/load.js";
import { Random } from "../../src/util/random.js";
import { headCommit } from "../../src/workspace/repo.js";
import { addWorktree } from "../../src/workspace/worktree.js";
import { makeRepo, sh, tempDir } from "../helpers.js";

const PY = `import os
DEPTH = 8
TOTAL_BATCH_SIZE = 2**19
MATRIX_LR = 0.04
WEIGHT_DECAY = 0.0
ADAM_EPS = 1e-8
USE_BIAS = False
ACTIVATION = "relu"  # mutate: relu|gelu|silu
WARMUP = 0.1  # mutate: 0.0..0.5
SEED = 42  # mutate: off
ADAM_BETAS = (0.8, 0.95)
name = "not a constant"
    HIDDEN = 384
`;

describe("finding constants", () => {
  it("recognises numbers, powers of two, booleans and annotated choices", () => {
    const found = findConstants("train.py", PY).map((c) => [c.name, c.kind, c.raw]);
    expect(found).toEqual([
      ["DEPTH", "int", "8"],
      ["TOTAL_BATCH_SIZE", "pow2", "2**19"],
      ["MATRIX_LR", "float", "0.04"],
      ["WEIGHT_DECAY", "float", "0.0"],
      ["ADAM_EPS", "float", "1e-8"],
      ["USE_BIAS", "bool", "False"],
      ["ACTIVATION", "choice", '"relu"'],
      ["WARMUP", "float", "0.1"],
      ["HIDDEN", "int", "384"],
    ]);
    const warmup = findConstants("train.py", PY).find((c) => c.name === "WARMUP")!;
    expect(warmup.range).toEqual([0, 0.5]);
  });

  it("reads JavaScript and TypeScript declarations", () => {
    const js =
      "export const LR = 0.01;\nlet STEPS: number = 100;\nconst FAST = true; // why\nconst lower = 3;\n";
    expect(findConstants("a.ts", js).map((c) => `${c.name}=${c.raw}@${c.column}`)).toEqual([
      "LR=0.01@18",
      "STEPS=100@20",
      "FAST=true@13",
    ]);
  });
});

describe("changing a value", () => {
  const constant = (line: string) => findConstants("f.py", line)[0]!;

  it("keeps the written style and the type", () => {
    const rng = new Random(7);
    for (let i = 0; i < 50; i++) {
      expect(mutateValue(constant("LR = 0.04"), rng)).toMatch(/^\d+\.\d+$/);
      expect(mutateValue(constant("EPS = 1e-8"), rng)).toMatch(/^\d(\.\d+)?e-\d+$/);
      expect(mutateValue(constant("WD = 0.0"), rng)).toMatch(/^0\.0+1$/);
      expect(mutateValue(constant("B = 2**19"), rng)).toMatch(/^2\*\*(18|20)$/);
      expect(["7", "9", "6", "10", "11", "12", "4", "16", "5", "14"]).toContain(
        mutateValue(constant("D = 8"), rng),
      );
      expect(["2", "4"]).toContain(mutateValue(constant("H = 3"), rng));
      expect(mutateValue(constant("BIAS = False"), rng)).toBe("True");
      expect(['"gelu"', '"silu"']).toContain(
        mutateValue(constant('A = "relu"  # mutate: relu|gelu|silu'), rng),
      );
      const bounded = mutateValue(constant("W = 0.4  # mutate: 0.0..0.5"), rng);
      expect(bounded === null || Number(bounded) <= 0.5).toBe(true);
      expect(mutateValue(constant("X = 1  # mutate: 1..1"), rng)).toBeNull();
    }
  });
});

describe("the mutate researcher", () => {
  async function request(
    root: string,
    trial: number,
    history: ProposalRequest["history"] = [],
  ): Promise<ProposalRequest> {
    const task = parseTask(
      "run: python train.py\neditable: [train.py]\nprotected: [prepare.py]\nmetric: { name: val_bpb, goal: minimize }\n",
      root,
    );
    const worktree = join(tempDir(), "wt");
    const head = await headCommit(root);
    await addWorktree(root, worktree, head);
    return {
      task,
      tag: "t",
      trial,
      worktree,
      parent: { commit: head, metric: 1 },
      history,
      seed: 42,
      signal: new AbortController().signal,
    };
  }

  it("changes constants of editable files only, titled NAME old → new, the same for the same seed", async () => {
    const root = makeRepo({
      "train.py": PY,
      "prepare.py": "EVAL_TOKENS = 1000\nSEQ_LEN = 2048\n",
      "program.md": "go\n",
    });
    const researcher = createMutateResearcher();
    const titles: string[] = [];
    for (let n = 1; n <= 12; n++) {
      const req = await request(root, n);
      const result = await researcher.propose(req);
      if (!result.ok) throw new Error(result.reason);
      titles.push(result.title);
      expect(result.title).toMatch(/^[A-Z_]+ \S+ → \S+(; [A-Z_]+ \S+ → \S+)*$/);
      expect(result.hypothesis).toMatch(/improves val_bpb$/);
      expect(sh(req.worktree, "git status --porcelain")).toBe("M train.py");
      expect(readFileSync(join(req.worktree, "train.py"), "utf8")).toContain(
        "SEED = 42  # mutate: off",
      );
      const again = await researcher.propose(await request(root, n));
      expect(again.ok && again.title).toBe(result.title);
    }
    expect(new Set(titles).size).toBeGreaterThan(8);
  });

  it("does not repeat a change already tried on the same parent", async () => {
    const root = makeRepo({ "train.py": "USE_BIAS = False\n", "prepare.py": "x = 1\n" });
    const first = await request(root, 1);
    const tried = {
      ...(await request(root, 1)),
      history: [{ parentCommit: first.parent.commit, title: "USE_BIAS False → True" }],
    } as unknown as ProposalRequest;
    const result = await createMutateResearcher().propose(tried);
    expect(result).toEqual({ ok: false, reason: "no untried change found in 40 attempts" });
  });

  it("says plainly when there is nothing to change", async () => {
    const root = makeRepo({ "train.py": "print('no constants')\n", "prepare.py": "LR = 1\n" });
    const result = await createMutateResearcher().propose(await request(root, 1));
    expect(result).toMatchObject({
      ok: false,
      fatal: true,
      reason: expect.stringMatching(/found no constants/),
    });
  });
});
