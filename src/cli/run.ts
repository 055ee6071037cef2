import type { Command } from "commander";
import { startRun } from "../orchestrator/session.js";
import { formatSummary } from "../report/status.js";
import { positiveInt, positiveNumber, session, taskRoot } from "./common.js";

export function registerRun(program: Command): void {
  program
    .command("run")
    .description("start a new run on the task in the current folder (or --dir)")
    .option("-C, --dir <path>", "the task's folder")
    .option(
      "-t, --tag <tag>",
      "the run's name; its best line is branch autoresearch/<tag>",
      defaultTag(),
    )
    .option("-r, --researcher <name>", "who proposes changes", "mutate")
    .option(
      "-n, --max-trials <n>",
      "stop after this many trials, the baseline included",
      positiveInt,
    )
    .option("--max-hours <h>", "start no new trial after this many hours", positiveNumber)
    .option("--seed <n>", "the run's base seed (default: the task file's seed)", positiveInt)
    .action(async (o) => {
      const io = session();
      try {
        const result = await startRun({
          root: taskRoot(o.dir),
          tag: o.tag,
          researcher: o.researcher,
          maxTrials: o.maxTrials ?? null,
          maxHours: o.maxHours ?? null,
          seed: o.seed,
          signal: io.signal,
          emit: io.emit,
        });
        io.close();
        process.stdout.write(`\n${formatSummary(result.summary)}\n`);
        if (result.status === "stopped") process.exitCode = 130;
        else if (result.status === "failed") process.exitCode = 1;
      } finally {
        io.close();
      }
    });
}

/** Today as a short tag such as nov27, the convention of the original project. */
export function defaultTag(now = new Date()): string {
  return `${now.toLocaleString("en", { month: "short" }).toLowerCase()}${now.getDate()}`;
}
