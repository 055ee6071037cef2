import type { Command } from "commander";
import { tryWorkingCopy } from "../orchestrator/index.js";
import { fmtMetric } from "../report/terminal.js";
import { session, taskRoot } from "./common.js";
import { defaultTag } from "./run.js";

/** The section for program.md that tells a coding agent how to use `try`. */
export const AGENT_INSTRUCTIONS = `## Running experiments with autoresearch

This task is measured by autoresearch. Do not run the training program yourself, and do
not commit. For each experiment:

1. Edit only the editable files (see autoresearch.yaml: \`editable\`).
2. Run \`autoresearch try -m "<short title of the change>" --hypothesis "<why it should help>"\`.
   It commits your change as a trial, runs it under the time budget, judges it against
   the best result so far, records it, and prints the verdict and the metric.
3. Read the verdict. \`keep\`: your change is now part of the best line. Anything else
   (\`discard\`, \`crash\`, \`timeout\`, \`invalid\`, \`tampered\`): your change has been
   reverted. Either way the working copy is back on the best line, ready for the next idea.
4. \`autoresearch status --trials 20\` shows what has been tried; the log of a trial is at
   the path \`try\` prints.

One idea per trial. Protected files are checked after every run: changing them voids the trial.
`;

export function registerTry(program: Command): void {
  program
    .command("try")
    .description(
      "run the working copy's changes as one trial: keep or revert, record, print the verdict",
    )
    .option("-C, --dir <path>", "the task's folder")
    .requiredOption("-m, --title <text>", "what changed, in a line")
    .option("--hypothesis <text>", "why it should improve the metric", "")
    .option(
      "-t, --tag <tag>",
      "the run (default: the checked-out autoresearch/<tag> branch, else a new run)",
    )
    .option("--json", "print the result as one JSON object")
    .action(async (o) => {
      const io = session();
      try {
        const result = await tryWorkingCopy({
          root: taskRoot(o.dir),
          title: o.title,
          hypothesis: o.hypothesis,
          tag: o.tag,
          newTag: defaultTag(),
          signal: io.signal,
          emit: o.json ? () => undefined : io.emit,
        });
        io.close();
        const { trial, incumbent, run } = result;
        if (o.json) {
          process.stdout.write(
            `${JSON.stringify({
              run: run.tag,
              trial: trial?.n ?? null,
              verdict: trial?.verdict ?? null,
              metric: trial?.metric ?? null,
              incumbent_metric: trial?.incumbentMetric ?? null,
              reason: trial?.reason ?? result.stopped,
              kept: trial?.verdict === "keep",
              incumbent: incumbent
                ? { trial: incumbent.n, commit: incumbent.commit, metric: incumbent.metric }
                : null,
              log: result.logFile,
            })}\n`,
          );
        } else if (trial) {
          const was =
            trial.incumbentMetric === null
              ? ""
              : ` (incumbent was ${fmtMetric(trial.incumbentMetric)})`;
          process.stdout.write(
            [
              `trial ${trial.n}: ${trial.verdict}`,
              `${run.metric}: ${fmtMetric(trial.metric)}${was}`,
              `reason: ${trial.reason ?? ""}`,
              `the working copy is on the incumbent: ${run.branch} (${run.metric} ${fmtMetric(incumbent?.metric ?? null)})`,
              `log: ${result.logFile}`,
              "",
            ].join("\n"),
          );
        } else process.stdout.write(`the trial did not run: ${result.stopped}\n`);
        if (!trial) process.exitCode = 1;
        else if (trial.verdict === "interrupted") process.exitCode = 130;
      } finally {
        io.close();
      }
    });

  program
    .command("instructions")
    .description(
      "print the program.md section that tells a coding agent how to use `autoresearch try`",
    )
    .action(() => {
      process.stdout.write(AGENT_INSTRUCTIONS);
    });
}
