import type { FixtureTrial } from "./fixture.js";

/**
 * Histories for the progress chart's tests and for the pictures in docs/: the demo's
 * eight trials as `autoresearch demo` ran them, and a long synthetic run.
 */

/** `autoresearch demo` (8 trials, val_loss): six discards, all worse than the baseline. */
export const DEMO: FixtureTrial[] = [
  { title: "baseline", verdict: "keep", metric: 0.290486 },
  {
    title: 'INIT_SCALE 1.0 → 1.25; ACTIVATION "tanh" → "relu"; LEARNING_RATE 0.005 → 0.01',
    verdict: "discard",
    metric: 0.311182,
  },
  { title: "WARMDOWN false → true", verdict: "discard", metric: 0.450364 },
  {
    title: 'ACTIVATION "tanh" → "relu"; MOMENTUM 0.5 → 0.625',
    verdict: "discard",
    metric: 0.311177,
  },
  { title: 'ACTIVATION "tanh" → "relu"', verdict: "discard", metric: 0.338173 },
  { title: "BATCH_SIZE 32 → 16", verdict: "keep", metric: 0.224998 },
  {
    title: 'ACTIVATION "tanh" → "relu"; INIT_SCALE 1.0 → 1.25; BATCH_SIZE 16 → 32',
    verdict: "discard",
    metric: 0.369954,
  },
  { title: "MOMENTUM 0.5 → 0.4; HIDDEN 6 → 5", verdict: "discard", metric: 0.250205 },
];

/** A seeded generator (mulberry32), so that every run draws the same history. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VERBS = ["increase", "decrease", "halve", "double", "tune"];
const KNOBS = [
  "matrix LR",
  "embedding LR",
  "warmup ratio",
  "weight decay",
  "depth",
  "aspect ratio",
  "batch size",
  "RoPE base",
  "window pattern",
  "logit softcap",
];
const LONG =
  "replace ReLU² with SwiGLU in the MLP and rescale the output projection's init to match";

/**
 * A long run as a greedy judge records it (val_bpb, lower is better): improvements get
 * rarer and smaller, most discards land a little above the running best, about 4% crash
 * or time out, and about 2% diverge far above everything else.
 */
export function longHistory(trials: number, seed = 11): FixtureTrial[] {
  const rand = random(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  let best = 0.9979;
  const history: FixtureTrial[] = [{ title: "baseline", verdict: "keep", metric: best }];
  for (let n = 1; n < trials; n++) {
    const title =
      n % 37 === 0
        ? LONG
        : `${VERBS[Math.floor(rand() * VERBS.length)]} ${KNOBS[Math.floor(rand() * KNOBS.length)]} to ${(rand() * 10).toFixed(2)}`;
    const roll = rand();
    if (roll < 0.03) history.push({ title, verdict: "crash", metric: null });
    else if (roll < 0.04) history.push({ title, verdict: "timeout", metric: null });
    else if (roll < 0.06)
      history.push({ title, verdict: "discard", metric: best * (1.3 + rand() * 2) });
    else {
      const odds = 0.3 / (1 + n / 50);
      const step = 0.004 / (1 + n / 100);
      const metric =
        rand() < odds ? best - Math.abs(normal()) * step : best + Math.abs(normal()) * 0.006;
      const keep = metric < best;
      if (keep) best = metric;
      history.push({ title, verdict: keep ? "keep" : "discard", metric });
    }
  }
  return history;
}
