/**
 * greedy against confirm under noise. A simulated task whose true metric is a known
 * function of its constants — A, B and C matter, D, E, F and G do nothing — plus Gaussian
 * noise: a part fixed by the seed (σ_seed) and a part that differs on every run (σ_run,
 * like the timing noise of a time-budgeted trainer). The mutate researcher searches under
 * each judge with the same number of replicates, for several run seeds. Reported: the
 * share of no-effect changes kept, the true metric of the final incumbent, replicates spent.
 * H, I and J are tuned already: as near a real optimum, most changes there hurt a little.
 *
 *   npm run bench -- judge [replicates] [seeds]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Ledger } from "../src/ledger/ledger.js";
import { startRun } from "../src/orchestrator/index.js";

const REPLICATES = Number(process.argv[2] ?? 150);
const SEEDS = Number(process.argv[3] ?? 3);
const SIGMA_SEED = 0.02;
const SIGMA_RUN = 0.03;
const NO_EFFECT = new Set(["D", "E", "F", "G"]);

const TRAIN = `// A task with a known answer. A, B and C start off their optimum; H, I and J sit at theirs,
// so that every change to them is a little harmful; D, E, F and G do nothing at all.
const A = 1.0;
const B = 0.4;
const C = 3;
const D = 0.7;
const E = 5;
const F = 0.25;
const G = true;
const H = 0.3;
const I = 8;
const J = 0.05;

const trueMetric =
  (A - 2) ** 2 + 0.5 * (B - 1) ** 2 + 0.02 * (C - 5) ** 2 +
  0.4 * (H / 0.3 - 1) ** 2 + 0.4 * (I / 8 - 1) ** 2 + 0.4 * (J / 0.05 - 1) ** 2;
const gauss = (u, v) => Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v);
const seed = Number(process.env.AR_SEED ?? 0);
const seeded = (k) => Math.abs((Math.sin(seed * 12.9898 + k * 78.233) * 43758.5453) % 1);
const noise = ${SIGMA_SEED} * gauss(seeded(1), seeded(2)) + ${SIGMA_RUN} * gauss(Math.random(), Math.random());
console.log("---");
console.log("score: " + (trueMetric + noise));
console.log("true_score: " + trueMetric);
`;

/** The true metric of a version of the file, from its constants. */
function trueMetric(source: string): number {
  const get = (name: string) => Number(new RegExp(`const ${name} = ([^;]+);`).exec(source)![1]);
  return (
    (get("A") - 2) ** 2 +
    0.5 * (get("B") - 1) ** 2 +
    0.02 * (get("C") - 5) ** 2 +
    0.4 * (get("H") / 0.3 - 1) ** 2 +
    0.4 * (get("I") / 8 - 1) ** 2 +
    0.4 * (get("J") / 0.05 - 1) ** 2
  );
}

async function measure(policy: "greedy" | "confirm", seed: number) {
  const root = mkdtempSync(join(tmpdir(), "ar-judge-"));
  try {
    writeFileSync(
      join(root, "autoresearch.yaml"),
      [
        "editable: [train.mjs]",
        "run: node train.mjs",
        "budget: 5s",
        "metric: { name: score, goal: minimize }",
        "secondary: [true_score]",
        `judge: { policy: ${policy}${policy === "confirm" ? ", seeds: 3" : ""} }`,
        `seed: ${seed}`,
      ].join("\n"),
    );
    writeFileSync(join(root, "train.mjs"), TRAIN);
    execFileSync(
      "/bin/sh",
      ["-c", "git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm task"],
      { cwd: root },
    );
    await startRun({
      root,
      tag: "bench",
      researcher: "mutate",
      maxReplicates: REPLICATES,
      signal: new AbortController().signal,
      emit: () => undefined,
    });
    const ledger = Ledger.open(root);
    const run = ledger.run("bench")!;
    const trials = ledger
      .trials(run.id)
      .filter((t) => !t.baseline && (t.verdict === "keep" || t.verdict === "discard"));
    const noEffect = trials.filter((t) => {
      const edits =
        (ledger.proposal(t.id)?.detail as { edits?: { name: string }[] } | null)?.edits ?? [];
      return edits.length > 0 && edits.every((e) => NO_EFFECT.has(e.name));
    });
    const incumbent = ledger.incumbent(run.id)!;
    const replicates = ledger.countReplicates(run.id);
    ledger.close();
    const final = trueMetric(
      execFileSync("git", ["show", `${incumbent.commit}:train.mjs`], {
        cwd: root,
        encoding: "utf8",
      }),
    );
    return {
      policy,
      seed,
      replicates,
      trials: trials.length,
      kept: trials.filter((t) => t.verdict === "keep").length,
      no_effect_trials: noEffect.length,
      no_effect_kept: noEffect.filter((t) => t.verdict === "keep").length,
      final_true_metric: Number(final.toFixed(5)),
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const runs: Awaited<ReturnType<typeof measure>>[] = [];
for (let i = 0; i < SEEDS; i++)
  for (const policy of ["greedy", "confirm"] as const) runs.push(await measure(policy, 100 + i));
const summary = (policy: string) => {
  const rs = runs.filter((r) => r.policy === policy);
  const trials = rs.reduce((a, r) => a + r.no_effect_trials, 0);
  const kept = rs.reduce((a, r) => a + r.no_effect_kept, 0);
  return {
    no_effect_kept_share: trials ? Number((kept / trials).toFixed(3)) : null,
    no_effect: `${kept} of ${trials}`,
    mean_final_true_metric: Number(
      (rs.reduce((a, r) => a + r.final_true_metric, 0) / rs.length).toFixed(5),
    ),
    mean_replicates: rs.reduce((a, r) => a + r.replicates, 0) / rs.length,
  };
};
const result = {
  date: new Date().toISOString(),
  machine: `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, node ${process.version}`,
  replicates_per_run: REPLICATES,
  sigma_seed: SIGMA_SEED,
  sigma_run: SIGMA_RUN,
  starting_true_metric: trueMetric(TRAIN),
  greedy: summary("greedy"),
  confirm: summary("confirm"),
  runs,
};
console.log(JSON.stringify(result, null, 2));
writeFileSync(
  join(import.meta.dirname, "results", `judge-${result.date.slice(0, 10)}.json`),
  `${JSON.stringify(result, null, 2)}\n`,
);
