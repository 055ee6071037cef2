/**
 * tune against mutate: how good the incumbent is after a number of trials.
 *
 * Synthetic: three noisy landscapes whose true loss is known (printed as `true_loss` beside
 * the noisy `loss` the harness judges): a separable quadratic (five parameters, mostly on a
 * log scale), a narrow curved valley (a banana, with declared ranges), and a mixed one
 * (two integers, two categorical choices, two parameters with no effect). Each researcher runs
 * 50 trials per seed under the confirm judge; reported is the median over the seeds of the
 * incumbent's true loss after 20 and after 50 trials.
 *
 * Demo: the demo task (real training of a small network), 24 trials per seed; reported is
 * the incumbent's val_loss at the end (the mean over the judge's seeds).
 *
 * Researchers are `mutate` and `tune` (its default sampler, GP); `tune:tpe`, `tune:gp` or
 * `tune:cmaes` runs tune with that sampler.
 *
 *   npm run bench -- research [synthetic|demo|both] [seeds] [researchers] [landscapes]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Ledger } from "../src/ledger/ledger.js";
import { type StartOptions, startRun } from "../src/orchestrator/index.js";
import { initTask } from "../src/task/init.js";
import { LANDSCAPES, type Landscape, NOISE, SIGMA } from "./landscapes.js";

const WHICH = process.argv[2] ?? "both";
const RESEARCHERS = process.argv[4]?.split(",");
function commitAll(root: string) {
  execFileSync(
    "/bin/sh",
    ["-c", "git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm task"],
    { cwd: root },
  );
}

/** The incumbent's recorded `metric` (or secondary) after the first `k` trials. */
function incumbentAfter(root: string, k: number, metric: string): number {
  const ledger = Ledger.open(root);
  try {
    const trials = ledger.trials(ledger.run("bench")!.id).filter((t) => t.n < k);
    const keep = trials.filter((t) => t.verdict === "keep").at(-1)!;
    return metric === "metric" ? keep.metric! : keep.metrics[metric]!;
  } finally {
    ledger.close();
  }
}

/** A run tagged `bench` to its trial limit; the seconds it took. */
async function timedRun(
  options: Pick<StartOptions, "root" | "maxTrials" | "seed" | "sandbox"> & { researcher: string },
): Promise<number> {
  const started = Date.now();
  const [kind, sampler] = options.researcher.split(":");
  await startRun({
    ...options,
    researcher: kind,
    researcherFlags: sampler ? { sampler } : {},
    tag: "bench",
    signal: new AbortController().signal,
    emit: () => undefined,
  });
  return Math.round((Date.now() - started) / 1000);
}

async function synthetic(landscape: Landscape, researcher: string, seed: number) {
  const root = mkdtempSync(join(tmpdir(), "ar-research-"));
  try {
    writeFileSync(
      join(root, "autoresearch.yaml"),
      [
        "editable: [train.mjs]",
        "run: node train.mjs",
        "budget: 5s",
        "metric: { name: loss, goal: minimize }",
        "secondary: [true_loss]",
        "judge: { policy: confirm }",
        `seed: ${seed}`,
        ...(landscape.params ? [`researcher: { params: ${landscape.params} }`] : []),
      ].join("\n"),
    );
    writeFileSync(join(root, "train.mjs"), landscape.source + NOISE);
    commitAll(root);
    const seconds = await timedRun({ root, researcher, maxTrials: 50, sandbox: "none" });
    return {
      landscape: landscape.name,
      researcher,
      seed,
      seconds,
      after20: incumbentAfter(root, 20, "true_loss"),
      after50: incumbentAfter(root, 50, "true_loss"),
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function demo(researcher: string, seed: number) {
  const root = await initTask("demo", mkdtempSync(join(tmpdir(), "ar-research-demo-")));
  try {
    const seconds = await timedRun({ root, researcher, maxTrials: 24, seed });
    return {
      researcher,
      seed,
      seconds,
      baseline: incumbentAfter(root, 1, "metric"),
      best: incumbentAfter(root, 24, "metric"),
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number) => Number(x.toPrecision(4));

const result: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, node ${process.version}`,
  sigma: SIGMA,
};

if (WHICH === "synthetic" || WHICH === "both") {
  const seeds = Array.from({ length: Number(process.argv[3] ?? 10) }, (_, i) => 1 + i);
  const researchers = RESEARCHERS ?? ["mutate", "tune", "tune:tpe"];
  const names = process.argv[5]?.split(",");
  const landscapes = LANDSCAPES.filter((l) => !names || names.includes(l.name));
  const runs: Awaited<ReturnType<typeof synthetic>>[] = [];
  for (const landscape of landscapes)
    for (const seed of seeds)
      for (const researcher of researchers) {
        const r = await synthetic(landscape, researcher, seed);
        runs.push(r);
        console.error(JSON.stringify(r));
      }
  // Per landscape and researcher, the medians after 20 and 50 trials; each tune variant's
  // median after 20 against mutate's after 50 (the target).
  result.synthetic = Object.fromEntries(
    landscapes.map((l) => {
      const of = (researcher: string, key: "after20" | "after50") =>
        round(
          median(
            runs
              .filter((r) => r.landscape === l.name && r.researcher === researcher)
              .map((r) => r[key]),
          ),
        );
      const mutate50 = researchers.includes("mutate") ? of("mutate", "after50") : null;
      return [
        l.name,
        Object.fromEntries(
          researchers.map((r) => [
            r,
            {
              after20: of(r, "after20"),
              after50: of(r, "after50"),
              ...(r.startsWith("tune") && mutate50 !== null
                ? { after20_beats_mutate_after50: of(r, "after20") < mutate50 }
                : {}),
            },
          ]),
        ),
      ];
    }),
  );
  result.seeds = seeds;
  result.synthetic_runs = runs;
}

if (WHICH === "demo" || WHICH === "both") {
  const seeds = [1, 2, 3];
  const researchers = RESEARCHERS ?? ["mutate", "tune"];
  const runs: Awaited<ReturnType<typeof demo>>[] = [];
  for (const seed of seeds)
    for (const researcher of researchers) {
      const r = await demo(researcher, seed);
      runs.push(r);
      console.error(JSON.stringify(r));
    }
  const of = (researcher: string) =>
    runs.filter((r) => r.researcher === researcher).map((r) => r.best);
  result.demo = {
    seeds,
    ...Object.fromEntries(
      researchers.map((r) => [r, { best: of(r).map(round), median: round(median(of(r))) }]),
    ),
  };
  result.demo_runs = runs;
}

console.log(JSON.stringify(result, null, 2));
writeFileSync(
  join(
    import.meta.dirname,
    "results",
    `research-${WHICH}-${String(result.date).slice(0, 10)}.json`,
  ),
  `${JSON.stringify(result, null, 2)}\n`,
);
