// The demo task's model and training loop: a small neural network in plain JavaScript.
// Researchers may change anything in this file. It trains for AR_TIME_BUDGET seconds,
// then prints a summary block that the harness reads.

import { CLASSES, evaluate, loadData, rng, TIME_BUDGET } from "./prepare.mjs";

const HIDDEN = 6; // units per hidden layer
const DEPTH = 1; // hidden layers
const ACTIVATION = "tanh"; // mutate: tanh|relu
const LEARNING_RATE = 0.005;
const MOMENTUM = 0.5;
const BATCH_SIZE = 32;
const WEIGHT_DECAY = 0.001;
const INIT_SCALE = 1.0;
const WARMDOWN = false; // decay the learning rate linearly to zero over the budget

const started = Date.now();
const random = rng(Number(process.env.AR_SEED ?? 42));
const { train, val } = loadData();

function gaussian() {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

// Layers: 2 → HIDDEN (× DEPTH) → CLASSES. Weights row-major [out][in].
const sizes = [2, ...Array(DEPTH).fill(HIDDEN), CLASSES];
const layers = [];
for (let l = 0; l + 1 < sizes.length; l++) {
  const nIn = sizes[l];
  const nOut = sizes[l + 1];
  const w = new Float64Array(nOut * nIn).map(() => (gaussian() * INIT_SCALE) / Math.sqrt(nIn));
  layers.push({
    nIn,
    nOut,
    w,
    b: new Float64Array(nOut),
    vw: new Float64Array(nOut * nIn),
    vb: new Float64Array(nOut),
    gw: new Float64Array(nOut * nIn),
    gb: new Float64Array(nOut),
  });
}

const act = ACTIVATION === "relu" ? (z) => Math.max(z, 0) : Math.tanh;
const dact = ACTIVATION === "relu" ? (a) => (a > 0 ? 1 : 0) : (a) => 1 - a * a;

/** Activations of every layer for one input; the last holds class probabilities. */
function forward(x0, x1) {
  const outs = [Float64Array.of(x0, x1)];
  for (let l = 0; l < layers.length; l++) {
    const { nIn, nOut, w, b } = layers[l];
    const input = outs[l];
    const out = new Float64Array(nOut);
    for (let o = 0; o < nOut; o++) {
      let z = b[o];
      for (let i = 0; i < nIn; i++) z += w[o * nIn + i] * input[i];
      out[o] = l === layers.length - 1 ? z : act(z);
    }
    outs.push(out);
  }
  const logits = outs[outs.length - 1];
  const max = Math.max(...logits);
  let sum = 0;
  for (let c = 0; c < CLASSES; c++) sum += logits[c] = Math.exp(logits[c] - max);
  for (let c = 0; c < CLASSES; c++) logits[c] /= sum;
  return outs;
}

function step(lr) {
  for (const layer of layers) {
    layer.gw.fill(0);
    layer.gb.fill(0);
  }
  for (let k = 0; k < BATCH_SIZE; k++) {
    const i = Math.floor(random() * train.n);
    const outs = forward(train.x[2 * i], train.x[2 * i + 1]);
    let delta = Float64Array.from(outs[outs.length - 1]);
    delta[train.y[i]] -= 1;
    for (let l = layers.length - 1; l >= 0; l--) {
      const { nIn, nOut, w, gw, gb } = layers[l];
      const input = outs[l];
      const back = new Float64Array(nIn);
      for (let o = 0; o < nOut; o++) {
        gb[o] += delta[o];
        for (let j = 0; j < nIn; j++) {
          gw[o * nIn + j] += delta[o] * input[j];
          back[j] += w[o * nIn + j] * delta[o];
        }
      }
      if (l > 0) for (let j = 0; j < nIn; j++) back[j] *= dact(input[j]);
      delta = back;
    }
  }
  for (const { w, b, vw, vb, gw, gb } of layers) {
    for (let j = 0; j < w.length; j++) {
      vw[j] = MOMENTUM * vw[j] - lr * (gw[j] / BATCH_SIZE + WEIGHT_DECAY * w[j]);
      w[j] += vw[j];
    }
    for (let j = 0; j < b.length; j++) {
      vb[j] = MOMENTUM * vb[j] - lr * (gb[j] / BATCH_SIZE);
      b[j] += vb[j];
    }
  }
}

const trainStart = Date.now();
let steps = 0;
for (;;) {
  const elapsed = (Date.now() - trainStart) / 1000;
  if (elapsed >= TIME_BUDGET) break;
  step(WARMDOWN ? LEARNING_RATE * (1 - elapsed / TIME_BUDGET) : LEARNING_RATE);
  steps++;
}
const trainingSeconds = (Date.now() - trainStart) / 1000;

const result = evaluate((x0, x1) => {
  const outs = forward(x0, x1);
  return outs[outs.length - 1];
}, val);
if (!Number.isFinite(result.val_loss)) result.val_loss = Number.NaN;

const params = layers.reduce((n, l) => n + l.w.length + l.b.length, 0);
console.log("---");
console.log(`val_loss:         ${result.val_loss.toFixed(6)}`);
console.log(`val_accuracy:     ${result.val_accuracy.toFixed(4)}`);
console.log(`training_seconds: ${trainingSeconds.toFixed(1)}`);
console.log(`total_seconds:    ${((Date.now() - started) / 1000).toFixed(1)}`);
console.log(`num_steps:        ${steps}`);
console.log(`num_params:       ${params}`);
