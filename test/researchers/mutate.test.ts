import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createMutateResearcher, mutateValue } from "../../src/researchers/mutate.js";
import { findParams } from "../../src/researchers/params/find.js";
import { writeValue } from "../../src/researchers/params/param.js";
import { type Dimension, dimensions } from "../../src/researchers/params/space.js";
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
name = "not a parameter: a string without choices"
pair = (1, 2)
`;

async function dims(file: string, text: string) {
  return dimensions(await findParams(file, text), undefined).dimensions;
}

describe("finding parameters", () => {
  it("recognises numbers, powers of two, booleans and annotated choices; not seeds, tuples or marked ones", async () => {
    const found = (await dims("train.py", PY)).map((d) => [d.key, d.param.kind, d.param.raw]);
    expect(found).toEqual([
      ["DEPTH", "int", "8"],
      ["TOTAL_BATCH_SIZE", "pow2", "2**19"],
      ["MATRIX_LR", "float", "0.04"],
      ["WEIGHT_DECAY", "float", "0.0"],
      ["ADAM_EPS", "float", "1e-8"],
      ["USE_BIAS", "bool", "False"],
      ["ACTIVATION", "string", '"relu"'],
      ["WARMUP", "float", "0.1"],
    ]);
    const warmup = (await dims("train.py", PY)).find((d) => d.key === "WARMUP")!;
    expect([warmup.low, warmup.high, warmup.declared]).toEqual([0, 0.5, true]);
  });

  it("reads JavaScript and TypeScript declarations, lowercase names too, not counters", async () => {
    const js =
      "export const LR = 0.01;\nlet STEPS: number = 100;\nconst FAST = true; // why\nconst lower = 3;\nlet steps = 0;\nfunction f() { const inner = 2; steps++; }\n";
    const found = await findParams("a.ts", js);
    expect(found.map((c) => `${c.name}=${c.raw}`)).toEqual([
      "LR=0.01",
      "STEPS=100",
      "FAST=true",
      "lower=3",
    ]);
    for (const c of found) expect(js.slice(c.start, c.end)).toBe(c.raw);
    expect(found.find((c) => c.name === "FAST")!.comment).toBe("why");
  });
});

describe("changing a value", () => {
  const dimension = async (line: string) => (await dims("f.py", line))[0]!;
  const mutated = (d: Dimension, rng: Random) => {
    const value = mutateValue(d, rng);
    return value === null ? null : writeValue(d.param, value);
  };

  it("keeps the written style and the type, and can go back to zero", async () => {
    const rng = new Random(7);
    const lr = await dimension("LR = 0.04");
    const eps = await dimension("EPS = 1e-8");
    const wd = await dimension("WD = 0.0");
    const batch = await dimension("B = 2**19");
    const depth = await dimension("D = 8");
    const heads = await dimension("H = 3");
    const bias = await dimension("BIAS = False");
    const act = await dimension('A = "relu"  # mutate: relu|gelu|silu');
    const w = await dimension("W = 0.4  # mutate: 0.0..0.5");
    expect(await dims("f.py", "X = 1  # mutate: 1..1")).toEqual([]);
    const seen = new Set<string | null>();
    for (let i = 0; i < 50; i++) {
      expect(mutated(lr, rng)).toMatch(/^\d+\.\d+$/);
      expect(mutated(eps, rng)).toMatch(/^\d(\.\d+)?e-\d+$/);
      // From zero: a hundredth or a tenth of the range ([0, 1] when inferred).
      expect(["0.01", "0.1"]).toContain(mutated(wd, rng));
      expect(mutated(batch, rng)).toMatch(/^2\*\*(18|20)$/);
      expect(["7", "9", "6", "10", "11", "12", "4", "16", "5", "14"]).toContain(
        mutated(depth, rng),
      );
      expect(["2", "4"]).toContain(mutated(heads, rng));
      expect(mutated(bias, rng)).toBe("True");
      expect(['"gelu"', '"silu"']).toContain(mutated(act, rng));
      const bounded = mutated(w, rng);
      expect(bounded === null || Number(bounded) <= 0.5).toBe(true);
      seen.add(mutated(w, rng));
    }
    // W's range starts at zero: now and then a change takes it back there.
    expect(seen.has("0.0")).toBe(true);
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
    expect(result).toEqual({
      ok: false,
      reason:
        "no untried change found in 40 attempts: its 1 parameter(s) may have no value left to try on this incumbent; name more in researcher.params, or widen their ranges",
    });
  });

  it("knows two edits tried on a parent in the other order as the same change", async () => {
    // Two booleans: three changes in all, one of them the pair, tried as "B …; A …".
    const root = makeRepo({ "train.py": "A = False\nB = False\n", "prepare.py": "x = 1\n" });
    const first = await request(root, 1);
    const history = ["A False → True", "B False → True", "A False → True; B False → True"].map(
      (title) => ({ parentCommit: first.parent.commit, title }),
    );
    for (let trial = 1; trial <= 8; trial++) {
      const req = { ...(await request(root, trial)), history } as unknown as ProposalRequest;
      const result = await createMutateResearcher().propose(req);
      expect(result.ok, result.ok ? result.title : "").toBe(false);
    }
  });

  it("does not repeat a change another host of its swarm tried on the same parent", async () => {
    const root = makeRepo({ "train.py": "USE_BIAS = False\n", "prepare.py": "x = 1\n" });
    const alone = await createMutateResearcher().propose(await request(root, 1));
    expect(alone.ok && alone.title).toBe("USE_BIAS False → True");
    const req = await request(root, 1);
    const result = await createMutateResearcher().propose({
      ...req,
      triedElsewhere: new Set(["USE_BIAS False → True"]),
    });
    expect(result.ok).toBe(false);
  });

  it("does not propose a change that is in flight (trials proposed ahead run beside it)", async () => {
    const root = makeRepo({ "train.py": "USE_BIAS = False\n", "prepare.py": "x = 1\n" });
    const req = await request(root, 1);
    const result = await createMutateResearcher().propose({
      ...req,
      inFlight: ["USE_BIAS False → True"],
    });
    expect(result.ok).toBe(false);
  });

  it("makes a change another host runs when nothing else is left, for the swarm's claim to decide", async () => {
    const root = makeRepo({ "train.py": "USE_BIAS = False\n", "prepare.py": "x = 1\n" });
    const req = await request(root, 1);
    const title = "USE_BIAS False → True";
    const result = await createMutateResearcher().propose({
      ...req,
      inFlight: [title],
      runningElsewhere: new Set([title]),
    });
    expect(result).toMatchObject({ ok: true, title });
  });

  it("says plainly when there is nothing to change", async () => {
    const root = makeRepo({ "train.py": "print('no parameters')\n", "prepare.py": "LR = 1\n" });
    const result = await createMutateResearcher().propose(await request(root, 1));
    expect(result).toMatchObject({
      ok: false,
      fatal: true,
      reason: expect.stringMatching(/found no parameters/),
    });
  });
});
