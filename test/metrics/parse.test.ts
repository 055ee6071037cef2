import { describe, expect, it } from "vitest";
import { isBetter } from "../../src/metrics/compare.js";
import { parseConstraint, violations } from "../../src/metrics/constraints.js";
import {
  parseJsonLine,
  parseMetrics,
  parseRegex,
  parseSummary,
  summaryProblem,
  toNumber,
} from "../../src/metrics/parse.js";

const KARPATHY = `step 953 loss 3.01
---
val_bpb:          0.997900
training_seconds: 300.1
total_seconds:    325.9
peak_vram_mb:     45060.2
mfu_percent:      39.80
total_tokens_M:   499.6
num_steps:        953
num_params_M:     50.3
depth:            8
`;

describe("metric parsers", () => {
  it("reads karpathy/autoresearch's summary block", () => {
    expect(parseSummary(KARPATHY)).toEqual({
      val_bpb: 0.9979,
      training_seconds: 300.1,
      total_seconds: 325.9,
      peak_vram_mb: 45060.2,
      mfu_percent: 39.8,
      total_tokens_M: 499.6,
      num_steps: 953,
      num_params_M: 50.3,
      depth: 8,
    });
  });

  it("uses the block after the last ---, and ignores key: value lines before it", () => {
    expect(parseSummary("val_bpb: 5\n---\nval_bpb: 1\n---\nval_bpb: 2\nnote: text\n")).toEqual({
      val_bpb: 2,
    });
    expect(parseSummary("val_bpb: 5\n")).toEqual({});
  });

  it("names a metric printed twice with different values, or printed as garbage", () => {
    expect(summaryProblem("---\nscore: 1.5\nscore: 0.1\n", "score")).toBe(
      "score is printed 2 times with different values (1.5, 0.1)",
    );
    expect(summaryProblem("---\nscore: 1.5\nscore: 1.50\n", "score")).toBeNull();
    expect(summaryProblem("---\nscore: banana\n", "score")).toBe('score is not a number: "banana"');
    expect(summaryProblem("---\nscore: 2\n", "score")).toBeNull();
    // Before the block, anything goes.
    expect(summaryProblem("score: 9\n---\nscore: 2\n", "score")).toBeNull();
  });

  it("understands Python's nan and inf, percents and exponents", () => {
    expect(toNumber("nan")).toBeNaN();
    expect(toNumber("-inf")).toBe(Number.NEGATIVE_INFINITY);
    expect(toNumber("12.5%")).toBe(12.5);
    expect(toNumber("3e-4")).toBe(0.0003);
    expect(toNumber("true")).toBeNull();
  });

  it("takes the last match of a regular expression, by its value group or first group", () => {
    const log = "val loss 3.2\nval loss 2.9\nval loss 2.7 (final)\n";
    expect(parseRegex(log, "val loss ([0-9.]+)")).toBe(2.7);
    expect(parseRegex(log, "val loss (?<value>[0-9.]+)")).toBe(2.7);
    expect(parseRegex(log, "nothing here ([0-9]+)")).toBeNull();
  });

  it("reads the last JSON line that holds the metric", () => {
    const log = '{"step": 1, "loss": 3}\n{"val_loss": 2.5, "acc": 0.9}\nnoise\n{"step": 2}\n';
    expect(parseJsonLine(log, "val_loss")).toEqual({ val_loss: 2.5, acc: 0.9 });
    expect(parseJsonLine('{"val_loss": NaN}\n', "val_loss").val_loss).toBeNaN();
  });

  it("combines parser, secondary patterns and the result file, the file winning", () => {
    const metric = {
      name: "loss",
      goal: "minimize" as const,
      parser: "regex" as const,
      pattern: "loss=([0-9.]+)",
    };
    const secondary = [
      { name: "mem", pattern: "mem (\\d+)MB" },
      { name: "steps", pattern: null },
    ];
    const log = "loss=3\nmem 512MB\nloss=2\n---\nsteps: 100\n";
    expect(parseMetrics(log, metric, secondary)).toEqual({ loss: 2, mem: 512, steps: 100 });
    expect(parseMetrics(log, metric, secondary, '{"loss": 1.5, "extra": "7"}')).toEqual({
      loss: 1.5,
      mem: 512,
      steps: 100,
      extra: 7,
    });
  });
});

describe("constraints and comparison", () => {
  it("parses and checks bounds", () => {
    const c = parseConstraint("peak_vram_mb < 80000")!;
    expect(c).toEqual({
      text: "peak_vram_mb < 80000",
      metric: "peak_vram_mb",
      op: "<",
      value: 80000,
    });
    expect(violations({ peak_vram_mb: 79999 }, [c])).toEqual([]);
    expect(violations({ peak_vram_mb: 80000 }, [c])).toEqual([
      "peak_vram_mb < 80000: peak_vram_mb was 80000",
    ]);
    expect(parseConstraint("a >= -1.5e3")).toMatchObject({ op: ">=", value: -1500 });
    expect(parseConstraint("a ~ 3")).toBeNull();
  });

  it("compares in the direction of the goal, beyond min_effect", () => {
    expect(isBetter(0.99, 1, "minimize")).toBe(true);
    expect(isBetter(1, 1, "minimize")).toBe(false);
    expect(isBetter(0.9995, 1, "minimize", 0.001)).toBe(false);
    expect(isBetter(1.1, 1, "maximize")).toBe(true);
  });
});
