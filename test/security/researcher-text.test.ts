import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { quadraticTask, runCli } from "../helpers.js";

describe("what a researcher writes", () => {
  it("is bounded and printable everywhere it is recorded or shown", async () => {
    // A command researcher answering with a 4 MB title full of terminal escapes and bells.
    const researcher = [
      "const huge = '\\u001b]0;owned\\u0007\\u001b[2J' + 'A'.repeat(4_000_000);",
      "const hypothesis = 'line one\\u001b[31m red\\n' + 'B'.repeat(3_000_000);",
      "const fs = require('node:fs');",
      "fs.writeFileSync('train.mjs', fs.readFileSync('train.mjs', 'utf8').replace('const X = 1', 'const X = 2'));",
      "console.log(JSON.stringify({ title: huge, hypothesis }));",
    ].join("\n");
    const root = quadraticTask({
      yaml: [
        "editable: [train.mjs]",
        "run: node train.mjs",
        "metric: { name: score, goal: minimize }",
        "researcher: { kind: command, command: node research.cjs }",
      ].join("\n"),
      extra: { "research.cjs": researcher },
    });
    const r = await runCli(["run", "-C", root, "-t", "x", "-n", "2"]);
    expect(r.code).toBe(0);
    for (const out of [r.stdout, (await runCli(["status", "-C", root, "--trials", "3"])).stdout]) {
      expect(out.includes("\u0007") || out.includes("\u001b")).toBe(false);
      expect(out.length).toBeLessThan(20_000);
    }
    const ledger = Ledger.open(root);
    const trial = ledger.trials(ledger.run("x")!.id)[1]!;
    ledger.close();
    expect(trial.title!.length).toBeLessThanOrEqual(200);
    expect(trial.title).toMatch(/^\]0;owned \[2JA+…$/);
    expect(trial.hypothesis!.length).toBeLessThanOrEqual(4000);
    expect(trial.hypothesis).toMatch(/^line one\[31m red\nB+…$/);
    const message = readFileSync(join(root, ".autoresearch/runs/x/results.tsv"), "utf8");
    expect(message.length).toBeLessThan(5_000);
    // The trial's folder keeps more of it, within a limit.
    const proposal = join(root, ".autoresearch/runs/x/trials/1/proposal.json");
    expect(statSync(proposal).size).toBeLessThan(2_200_000);
    expect(statSync(join(root, ".autoresearch/ledger.db")).size).toBeLessThan(2_000_000);
  });
});
