import type { Command } from "commander";
import { resumeRun } from "../orchestrator/index.js";
import {
  afterSession,
  budgetChoice,
  executorChoice,
  executorFlags,
  lookaheadFlag,
  positiveInt,
  positiveNumber,
  sandboxFlag,
  session,
  stopFlags,
  stopsChoice,
  swarmFlags,
  swarmOption,
  taskRoot,
  traffic,
} from "./common.js";

export function registerResume(program: Command): void {
  const command = program
    .command("resume")
    .description("continue a run after a stop, a failure or a crash (the latest run unless --tag)")
    .option("-C, --dir <path>", "the task's folder")
    .option("-t, --tag <tag>", "the run to continue")
    .option("-n, --max-trials <n>", "a new limit on the run's total trials", positiveInt)
    .option("--max-hours <h>", "start no new trial after this many hours", positiveNumber)
    .option(
      "--record-responses <file>",
      "record the LLM provider's traffic to this file (JSON lines)",
    )
    .option(
      "--fake-responses <file>",
      "replay recorded provider traffic instead of calling the provider",
    );
  stopFlags(swarmFlags(sandboxFlag(lookaheadFlag(executorFlags(command)), true))).action(
    async (o) => {
      const io = session();
      try {
        const result = await resumeRun({
          root: taskRoot(o.dir),
          tag: o.tag,
          maxTrials: o.maxTrials,
          maxHours: o.maxHours ?? null,
          maxUsd: budgetChoice(o),
          stops: stopsChoice(o),
          traffic: traffic(o),
          executor: executorChoice(o),
          ...(o.lookahead !== undefined ? { lookahead: o.lookahead } : {}),
          ...(o.sandbox ? { sandbox: o.sandbox } : {}),
          ...swarmOption(o),
          signal: io.signal,
          emit: io.emit,
        });
        io.close();
        await afterSession(taskRoot(o.dir), result);
      } finally {
        io.close();
      }
    },
  );
}
