import type { Command } from "commander";
import { noiseRun, promoteRun } from "../orchestrator/index.js";
import { executorChoice, executorFlags, positiveInt, session, taskRoot } from "./common.js";

export function registerLadder(program: Command): void {
  const promote = program
    .command("promote")
    .description(
      "try the incumbent at the next stage of the ladder, with leave-one-out ablations: the transfer table",
    )
    .option("-C, --dir <path>", "the task's folder")
    .option("-t, --tag <tag>", "the run (default: the latest)")
    .option("--stage <name>", "the stage to promote to (default: the one after the search stage)")
    .option("--seeds <n>", "seeds per evaluation (default: the stage's)", positiveInt);
  executorFlags(promote).action(async (o) => {
    const io = session();
    try {
      // Its progress as `run` prints it; the table comes with the promotion's end.
      await promoteRun({
        root: taskRoot(o.dir),
        tag: o.tag,
        stage: o.stage,
        seeds: o.seeds,
        executor: executorChoice(o),
        signal: io.signal,
        emit: io.emit,
      });
      io.close();
      if (io.signal.aborted) {
        process.stderr.write(
          "the promotion stopped before it finished: no transfer table (recorded as failed); `autoresearch promote` starts it again\n",
        );
        process.exitCode = 130;
      }
    } finally {
      io.close();
    }
  });

  const noise = program
    .command("noise")
    .description("run the incumbent on more seeds and record the run's noise floor again")
    .option("-C, --dir <path>", "the task's folder")
    .option("-t, --tag <tag>", "the run (default: the latest)")
    .option("--seeds <n>", "how many more seeds", positiveInt, 3);
  executorFlags(noise).action(async (o) => {
    const io = session();
    try {
      const floor = await noiseRun({
        root: taskRoot(o.dir),
        tag: o.tag,
        seeds: o.seeds,
        executor: executorChoice(o),
        signal: io.signal,
        emit: io.emit,
      });
      io.close();
      const spread =
        floor.sd === null
          ? "unknown (fewer than two values)"
          : String(Number(floor.sd.toPrecision(4)));
      process.stdout.write(
        `noise floor of #${floor.trial}: mean ${Number(floor.mean.toPrecision(6))}, standard deviation ${spread} over ${floor.values.length} seeds\n`,
      );
    } finally {
      io.close();
    }
  });
}
