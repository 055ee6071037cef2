import { describe, expect, it } from "vitest";
import { unreported } from "../../src/metrics/parse.js";
import type { MetricSpec } from "../../src/metrics/spec.js";
import { makeRepo, runCli } from "../helpers.js";

const spec = (parser: MetricSpec["parser"], pattern: string | null = null): MetricSpec => ({
  name: "val_loss",
  goal: "minimize",
  parser,
  pattern,
});

const SUMMARY =
  'val_loss was not reported: the summary parser reads "key: value" lines after the last line that is exactly "---"';

describe("a metric that was not reported", () => {
  it("says what the parser reads, where it looked, and where the name was printed", () => {
    expect(unreported("step 1\nval_loss=0.12\n", spec("summary"))).toBe(
      `${SUMMARY}; the output has no such line (it printed "val_loss=0.12" on line 2); to read it as printed, set metric.parser: regex and metric.pattern: 'val_loss=([-+0-9.eE]+)'`,
    );
    expect(unreported('{"step": 9, "val_loss": 0.12}\n', spec("summary"))).toBe(
      `${SUMMARY}; the output has no such line (it printed "{"step": 9, "val_loss": 0.12}" on line 1); for JSON lines, set metric.parser: json`,
    );
    expect(unreported("val_loss: 0.12\n", spec("summary"))).toBe(
      `${SUMMARY}; the output has no such line (it printed "val_loss: 0.12" on line 1); print a line "---" before the summary`,
    );
    expect(unreported("val_loss: 0.12\n---\nsteps: 3\n", spec("summary"))).toBe(
      `${SUMMARY}, line 2; none of them is val_loss (it printed "val_loss: 0.12" on line 1)`,
    );
    expect(unreported("training\n", spec("summary"))).toBe(
      `${SUMMARY}; the output has no such line`,
    );
    expect(unreported("[autoresearch] killed\n", spec("summary"))).toBe(
      "val_loss was not reported: the output is empty",
    );
    expect(unreported("val_loss = 0.12\n", spec("json"))).toBe(
      `val_loss was not reported: the json parser reads the last line that is a JSON object holding "val_loss"; none does (it printed "val_loss = 0.12" on line 1); to read it as printed, set metric.parser: regex and metric.pattern: 'val_loss = ([-+0-9.eE]+)'`,
    );
    expect(unreported("val loss 3\n", spec("regex", "loss: (\\d+)"))).toBe(
      "val_loss was not reported: metric.pattern 'loss: (\\d+)' matched nothing",
    );
  });

  it("reaches the user through the run's output", async () => {
    const root = makeRepo({
      "autoresearch.yaml": [
        "editable: [train.mjs]",
        "run: node train.mjs",
        "budget: 5s",
        "metric: { name: val_loss, goal: minimize }",
      ].join("\n"),
      "train.mjs": 'console.log("training");\nconsole.log("val_loss=0.12");\n',
      "program.md": "Make val_loss small.\n",
    });
    const result = await runCli(["run", "--max-trials", "1", "--tag", "t"], { cwd: root });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      `${SUMMARY}; the output has no such line (it printed "val_loss=0.12" on line 2); to read it as printed, set metric.parser: regex and metric.pattern: 'val_loss=([-+0-9.eE]+)'`,
    );
  }, 60_000);
});
