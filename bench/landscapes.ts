/** The noisy synthetic landscapes the research benches search: the true loss is known. */

/** The noise's standard deviation on the loss the harness judges. */
export const SIGMA = 0.05;

export const NOISE = `const gauss = () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
console.log("---");
console.log("loss: " + (trueLoss + ${SIGMA} * gauss()));
console.log("true_loss: " + trueLoss);
`;

export interface Landscape {
  name: string;
  source: string;
  params?: string;
}

export const LANDSCAPES: Landscape[] = [
  {
    name: "quadratic",
    source: `const lr = 1e-3;
const weight_decay = 0.3;
const warmup = 0.02;
const beta2 = 0.9;
const batch = 64;
const trueLoss =
  Math.log10(lr / 4e-3) ** 2 + Math.log10(weight_decay / 0.05) ** 2 +
  Math.log10(warmup / 0.1) ** 2 + 50 * (beta2 - 0.98) ** 2 + (Math.log2(batch / 200) / 2) ** 2;
`,
  },
  {
    name: "valley",
    source: `const x = 0.3;
const y = 1.5;
const z = 2.0;
const trueLoss = 0.05 * ((1 - x) ** 2 + 20 * (y - x * x) ** 2) + 0.5 * Math.log2(z) ** 2;
`,
    params: "[{ name: x, range: [0.1, 2] }, { name: y, range: [0.1, 3] }, z]",
  },
  {
    name: "mixed",
    source: `const depth = 3;
const width = 64;
const act = "relu"; // mutate: relu|gelu|silu|tanh
const norm = "none"; // mutate: none|layer|rms
const log_every = 100;
const ema = 0.5;
const trueLoss =
  0.05 * (depth - 8) ** 2 + 0.25 * Math.log2(width / 192) ** 2 +
  { relu: 0.3, gelu: 0, silu: 0.1, tanh: 0.6 }[act] + { none: 0.5, layer: 0.1, rms: 0 }[norm] +
  0 * log_every + 0 * ema;
`,
  },
];
