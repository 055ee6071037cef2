import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PYTHON } from "../helpers.js";

const LIBEXEC = join(import.meta.dirname, "..", "..", "libexec");

/** Runs `body` in Python with the GP sampler importable; what it prints, as JSON. */
function python(body: string): unknown {
  const script = [
    "import json, math, random, sys, warnings",
    `sys.path.insert(0, ${JSON.stringify(LIBEXEC)})`,
    "import optuna",
    "from optuna.distributions import CategoricalDistribution as C, FloatDistribution as F, IntDistribution as I",
    "from gp import Cube, GPSampler",
    "optuna.logging.set_verbosity(optuna.logging.WARNING)",
    "warnings.filterwarnings('ignore')",
    body,
  ].join("\n");
  const out = execFileSync(PYTHON, ["-c", script], {
    encoding: "utf8",
    env: { ...process.env, OPENBLAS_NUM_THREADS: "1" },
  });
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

describe("tune's GP sampler", () => {
  it("maps every kind of parameter to the cube and back, and snaps points to what the space can hold", () => {
    const result = python(`
space = {"lr": F(1e-4, 1e-1, log=True), "beta": F(0.5, 1.0), "depth": I(1, 12),
         "width": I(16, 1024, log=True), "act": C(["relu", "gelu", "silu"])}
cube = Cube(space)
p = {"lr": 3e-3, "beta": 0.9, "depth": 7, "width": 256, "act": "gelu"}
back = cube.decode(cube.encode(p))
import numpy as np
rng = np.random.default_rng(1)
snapped = cube.snap(rng.random((50, cube.width)))
decoded = [cube.decode(x) for x in snapped]
again = [cube.decode(cube.encode(d)) == d for d in decoded]
onehot = bool(all(sorted(x[cube.columns["act"][0]:cube.columns["act"][0] + 3]) == [0, 0, 1] for x in snapped))
outside = cube.encode({**p, "depth": 13})
col = cube.columns["lr"][0]
u = cube.encode({**p, "lr": 0.000973})[col]
print(json.dumps({"width": cube.width, "back": back, "again": all(again), "onehot": onehot,
  "outside": outside is None, "one_digit": cube.decode(np.where(np.arange(cube.width) == col, cube.rounded(u, col, 1), cube.encode(p)))["lr"],
  "ints": all(isinstance(d["depth"], int) and 1 <= d["depth"] <= 12 for d in decoded),
  # A float's ends are kept clear unless the centre is there; 0.98 does not round up to 1.
  "clear": cube.decode(cube.within(np.ones((1, cube.width)), cube.encode(p), 1.0)[0])["beta"],
  "at_end": cube.decode(cube.within(np.ones((1, cube.width)), cube.encode({**p, "beta": 1.0}), 1.0)[0])["beta"],
  "near_one": cube.rounded(cube.encode({**p, "beta": 0.98})[cube.columns["beta"][0]], cube.columns["beta"][0], 1)}))
`) as Record<string, unknown>;
    expect(result.width).toBe(7);
    expect(result.back).toEqual({
      lr: expect.closeTo(3e-3, 12),
      beta: expect.closeTo(0.9, 12),
      depth: 7,
      width: 256,
      act: "gelu",
    });
    expect(result.again).toBe(true);
    expect(result.onehot).toBe(true);
    expect(result.outside).toBe(true);
    expect(result.ints).toBe(true);
    expect(result.one_digit).toBeCloseTo(0.001, 12);
    expect(result.clear).toBeCloseTo(0.995, 9);
    expect(result.at_end).toBe(1);
    expect(result.near_one).toBeNull();
  });

  it("finds the minimum of a noisy function in fewer trials than random search, in either direction", () => {
    // Five seeds each: the GP's median best after 30 trials against random search's.
    const result = python(`
def f(p):
    return (math.log10(p["lr"] / 3e-3)) ** 2 + 4 * (p["beta"] - 0.8) ** 2 + {"a": 0.5, "b": 0, "c": 0.3}[p["act"]]
space = {"lr": F(1e-5, 1e-1, log=True), "beta": F(0, 1), "act": C(["a", "b", "c"])}
start = {"lr": 1e-4, "beta": 0.2, "act": "a"}
def best(sampler, seed, sign):
    rnd = random.Random(seed)
    study = optuna.create_study(sampler=sampler, direction="minimize" if sign > 0 else "maximize")
    if isinstance(sampler, GPSampler):
        sampler.space = space
    study.add_trial(optuna.trial.create_trial(params=start, distributions=space, value=sign * f(start)))
    for _ in range(30):
        t = study.ask(space)
        study.tell(t, sign * (f(t.params) + rnd.gauss(0, 0.05)))
    return min(f(t.params) for t in study.trials)
med = lambda xs: sorted(xs)[len(xs) // 2]
out = {}
for name, sign in (("min", 1), ("max", -1)):
    out[name] = {"gp": med([best(GPSampler(seed=s), s, sign) for s in range(5)]),
                 "random": med([best(optuna.samplers.RandomSampler(seed=s), s, sign) for s in range(5)])}
print(json.dumps(out))
`) as Record<string, { gp: number; random: number }>;
    for (const direction of ["min", "max"]) {
      const { gp, random } = result[direction]!;
      expect(gp, direction).toBeLessThan(random / 4);
      expect(gp, direction).toBeLessThan(0.05);
    }
  }, 120_000);

  it("spreads proposals that run at once, and leaves a space with nothing untried to the independent sampler", () => {
    const result = python(`
space = {"x": F(0, 1), "y": F(0, 1)}
sampler = GPSampler(seed=3)
sampler.space = space
study = optuna.create_study(sampler=sampler)
for x, y in ((0.1, 0.1), (0.9, 0.2), (0.5, 0.8)):
    study.add_trial(optuna.trial.create_trial(params={"x": x, "y": y}, distributions=space, value=(x - 0.3) ** 2 + (y - 0.3) ** 2))
a = study.ask(space).params
b = study.ask(space).params  # the first is still running
gap = math.dist((a["x"], a["y"]), (b["x"], b["y"]))

small = {"act": C(["relu", "gelu"])}
sampler2 = GPSampler(seed=4)
sampler2.space = small
s2 = optuna.create_study(sampler=sampler2)
for act, v in (("relu", 1.0), ("gelu", 0.5)):
    s2.add_trial(optuna.trial.create_trial(params={"act": act}, distributions=small, value=v))
relative = sampler2.sample_relative(s2, None, small)
print(json.dumps({"gap": gap, "relative": relative, "asked": s2.ask(small).params["act"]}))
`) as { gap: number; relative: Record<string, unknown>; asked: string };
    expect(result.gap).toBeGreaterThan(0.02);
    expect(result.relative).toEqual({});
    expect(["relu", "gelu"]).toContain(result.asked);
  }, 60_000);
});
