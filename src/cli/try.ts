import type { Command } from "commander";
import { FatalError } from "../errors.js";
import {
  type Emit,
  type RunEvent,
  stopOnSignals,
  type TryResult,
  tryWorkingCopy,
} from "../orchestrator/index.js";
import { fmtMetric } from "../report/terminal.js";
import { listSome, shellWord } from "../util/text.js";
import { formatSeconds } from "../util/units.js";
import { sandboxFlag, taskRoot } from "./common.js";
import { defaultTag, NEW_LEDGER_HELP } from "./run.js";

/** The section for program.md that tells a coding agent how to use `try`. */
export const AGENT_INSTRUCTIONS = `## Running experiments with autoresearch

This task is measured by autoresearch. Do not run the training program yourself, and do
not commit. For each experiment:

1. Edit only the editable files (see autoresearch.yaml: \`editable\`). New files that are
   not editable (notes, data) are left where they are and are not part of a trial.
2. Run \`autoresearch try -m "<short title of the change>" --hypothesis "<why it should help>"\`.
   It commits your change as a trial, runs it under the time budget, judges it against
   the best result so far, records it, and prints the verdict and the metric.
3. Read the verdict. \`keep\`: your change is now part of the best line. Anything else
   (\`discard\`, \`crash\`, \`timeout\`, \`invalid\`, \`tampered\`): your change has been
   reverted (\`try\` prints the ref that keeps it). Either way the working copy is back on
   the best line, ready for the next idea.
4. \`autoresearch status --trials 20\` shows what has been tried; the log of a trial that
   ran is at the path \`try\` prints.

One idea per trial. Protected files are checked after every run: changing them voids the trial.
`;

export function registerTry(program: Command): void {
  const command = program
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
    .option("--new-ledger", NEW_LEDGER_HELP);
  sandboxFlag(command, true).action(async (o) => {
    const stop = stopOnSignals(() =>
      process.stderr.write(
        "\nstopping: ending the running replicate (Ctrl-C again to quit at once)\n",
      ),
    );
    // With --json nothing else is printed: the notes (a new run begun, say) go in the answer.
    const notes: string[] = [];
    const collect: Emit = (event) => {
      if (event.type === "notice") notes.push(event.text);
    };
    try {
      const result = await tryWorkingCopy({
        root: taskRoot(o.dir),
        title: o.title,
        hypothesis: o.hypothesis,
        tag: o.tag,
        newTag: defaultTag(),
        newLedger: o.newLedger,
        ...(o.sandbox ? { sandbox: o.sandbox } : {}),
        signal: stop.signal,
        emit: o.json ? collect : tryProgress((line) => process.stdout.write(`${line}\n`)),
      });
      process.stdout.write(o.json ? `${JSON.stringify(answer(result, notes))}\n` : summary(result));
      process.exitCode = exitCode(result);
    } catch (error) {
      // An agent reading --json gets the refusal as JSON too (and stderr as always).
      if (o.json && error instanceof FatalError)
        process.stdout.write(
          `${JSON.stringify({ error: error.message, exit_code: error.exitCode })}\n`,
        );
      throw error;
    } finally {
      stop.dispose();
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

/**
 * What `try` shows while it works: the baseline and the trial's replicates. Not the run
 * display's lines: the loop's end names --max-trials, which try does not have, and the
 * trial's own line would repeat the summary.
 */
function tryProgress(print: (line: string) => void): Emit {
  let metric = "";
  return (event) => {
    if (event.type === "run-start") metric = event.metric;
    const line = progressLine(event, metric);
    if (line !== null) print(line);
  };
}

function progressLine(event: RunEvent, metric: string): string | null {
  switch (event.type) {
    case "run-start":
      return `${event.resumed ? "continuing" : "starting"} run ${event.tag}\n${event.sandbox}`;
    case "setup-start":
      return `setup: ${event.command}`;
    case "setup-end":
      return event.skipped
        ? "setup: already done on this machine"
        : `setup: done in ${formatSeconds(event.seconds)}`;
    case "slot-set-aside":
      return `slot ${event.slot} set aside: ${event.reason}`;
    case "notice":
      return `note: ${event.text}`;
    case "trial-start":
      return event.baseline ? `#${event.n} baseline: the unchanged code runs first` : null;
    case "replicate-start":
      return `#${event.n} running (replicate ${event.idx}, budget ${formatSeconds(event.budget)})`;
    case "trial-end":
      return event.baseline ? baselineLine(event, metric) : null;
    case "verify": {
      const was = event.previous === null ? "" : ` (was ${fmtMetric(event.previous)})`;
      const why = event.metric === null ? ` (${event.reason})` : "";
      return `#${event.n} held-out ${fmtMetric(event.metric)}${was}${why}`;
    }
    default:
      return null;
  }
}

function baselineLine(event: Extract<RunEvent, { type: "trial-end" }>, metric: string): string {
  const why = event.verdict === "keep" ? "" : ` (${event.reason})`;
  return `#${event.n} baseline: ${event.verdict}, ${metric} ${fmtMetric(event.metric)}${why}`;
}

/** The verdict, the metric by name, and where the working copy and the change are now. */
function summary(result: TryResult): string {
  const { trial, run } = result;
  const lines = trial
    ? [
        `trial ${trial.n}: ${trial.verdict}`,
        metricLine(run.metric, trial.metric, trial.incumbentMetric),
        ...(trial.verdict === "keep" ? [] : [`reason: ${trial.reason ?? ""}`]),
        ...whereThingsAre(result),
        ...(result.logFile ? [`log: ${result.logFile}`] : []),
      ]
    : [`the trial did not run: ${result.stopped}`];
  if (result.editedMeanwhile.length)
    lines.push(
      `not reverted, edited again while the trial ran: ${listSome(result.editedMeanwhile)}`,
    );
  if (result.leftAlone.length)
    lines.push(
      `left alone, not part of the trial (new files that are not editable): ${listSome(result.leftAlone)}`,
    );
  return `${lines.join("\n")}\n`;
}

function metricLine(name: string, metric: number | null, incumbent: number | null): string {
  const was = incumbent === null ? "" : ` (incumbent ${fmtMetric(incumbent)})`;
  return `${name} ${fmtMetric(metric)}${was}`;
}

function whereThingsAre(result: TryResult): string[] {
  const { trial, run, incumbent } = result;
  if (trial?.verdict === "interrupted")
    return [
      `the working copy is as you left it; run \`autoresearch try -m ${shellWord(trial.title ?? "TITLE")}\` again to try it`,
    ];
  if (!result.trialRef)
    return [
      "the working copy is as you left it (the change was not committed): fix what the reason says and try again",
    ];
  const onIncumbent = `the working copy is on the incumbent: ${run.branch} (${run.metric} ${fmtMetric(incumbent?.metric ?? null)})`;
  if (trial?.verdict === "keep") return [onIncumbent];
  return [
    onIncumbent,
    `your change was reverted; it is saved under ${result.trialRef} (\`git diff HEAD ${result.trialRef}\` shows it)`,
  ];
}

/** The --json answer: one object, its fields as before plus the metric's name and notes. */
function answer(result: TryResult, notes: string[]): Record<string, unknown> {
  const { trial, incumbent, run } = result;
  return {
    run: run.tag,
    trial: trial?.n ?? null,
    verdict: trial?.verdict ?? null,
    metric_name: run.metric,
    metric: trial?.metric ?? null,
    incumbent_metric: trial?.incumbentMetric ?? null,
    reason: trial?.reason ?? result.stopped,
    kept: trial?.verdict === "keep",
    incumbent: incumbent
      ? { trial: incumbent.n, commit: incumbent.commit, metric: incumbent.metric }
      : null,
    log: result.logFile,
    notes,
  };
}

function exitCode(result: TryResult): number {
  if (!result.trial) return 1;
  return result.trial.verdict === "interrupted" ? 130 : 0;
}
