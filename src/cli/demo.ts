import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { startRun } from "../orchestrator/index.js";
import { printReportAfterRun } from "../report/after-run.js";
import { formatSummary } from "../report/status.js";
import { initTask } from "../task/init.js";
import { positiveInt, session } from "./common.js";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("the whole loop offline: the demo task, the mutate researcher, a few trials")
    .argument("[dir]", "where to write the demo task (default: a new temporary folder)")
    .option("-n, --max-trials <n>", "trials to run, the baseline included", positiveInt, 8)
    .action(async (dir: string | undefined, o) => {
      const root = await initTask("demo", dir ?? mkdtempSync(join(tmpdir(), "autoresearch-demo-")));
      process.stdout.write(`demo task written to ${root}\n`);
      const io = session();
      try {
        const result = await startRun({
          root,
          tag: "demo",
          researcher: "mutate",
          maxTrials: o.maxTrials,
          signal: io.signal,
          emit: io.emit,
        });
        io.close();
        const s = result.summary;
        process.stdout.write(`\n${formatSummary(s)}\n`);
        await printReportAfterRun(root, s.run.tag);
        process.stdout.write(
          [
            "",
            `results:  ${s.resultsFile}`,
            `trials:   ${join(root, ".autoresearch", "runs", "demo", "trials")}/<n>/ (run.log, diff.patch, metrics.json)`,
            `history:  cd ${root} && git log --oneline ${s.run.branch}`,
            `status:   autoresearch status -C ${root}   (\`npm link\` puts autoresearch on your PATH)`,
            "",
            "next:     this demo's researcher, mutate, changes the parameters at random: a floor, not a method.",
            `          tune optimizes them with Optuna (needs python3-optuna): autoresearch run --researcher tune --tag tuned --max-trials 20 -C ${root}`,
            "          an LLM changes the code itself: --researcher anthropic (ANTHROPIC_API_KEY); anthropic,tune takes turns with tune.",
            "",
          ].join("\n"),
        );
        if (result.status === "stopped") process.exitCode = 130;
        else if (result.status === "failed") process.exitCode = 1;
      } finally {
        io.close();
      }
    });
}
