// The fixed part of the demo task: data and evaluation. Read-only for researchers.
//
// The problem: classify points of three interleaved spirals in the plane. The data are
// generated from a fixed seed, so every trial sees the same training and validation
// sets. The metric is the mean cross-entropy on the validation set (lower is better).

export const CLASSES = 3;
export const TRAIN_PER_CLASS = 400;
export const VAL_PER_CLASS = 200;
export const TIME_BUDGET = Number(process.env.AR_TIME_BUDGET ?? 5);

/** A small seeded generator, so data and runs are reproducible. */
export function rng(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(random) {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

function spirals(perClass, random) {
  const x = new Float64Array(perClass * CLASSES * 2);
  const y = new Int32Array(perClass * CLASSES);
  let i = 0;
  for (let c = 0; c < CLASSES; c++) {
    for (let k = 0; k < perClass; k++, i++) {
      const r = random();
      const theta = (c * 2 * Math.PI) / CLASSES + r * 4.5 + gaussian(random) * 0.25;
      x[2 * i] = r * Math.cos(theta);
      x[2 * i + 1] = r * Math.sin(theta);
      y[i] = c;
    }
  }
  return { x, y, n: perClass * CLASSES };
}

/** The training and validation sets, identical for every trial. */
export function loadData() {
  return { train: spirals(TRAIN_PER_CLASS, rng(1234)), val: spirals(VAL_PER_CLASS, rng(5678)) };
}

/**
 * The metric. `predict(x0, x1)` returns class probabilities; the result is the mean
 * cross-entropy and the accuracy on the validation set.
 */
export function evaluate(predict, val) {
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < val.n; i++) {
    const p = predict(val.x[2 * i], val.x[2 * i + 1]);
    loss -= Math.log(Math.max(p[val.y[i]], 1e-12));
    let best = 0;
    for (let c = 1; c < CLASSES; c++) if (p[c] > p[best]) best = c;
    if (best === val.y[i]) correct++;
  }
  return { val_loss: loss / val.n, val_accuracy: correct / val.n };
}
