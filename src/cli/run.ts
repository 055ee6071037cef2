import type { Command } from "commander";
import { startRun } from "../orchestrator/index.js";
import { RESEARCHERS, researcherFlags } from "../researchers/index.js";
import { flagName } from "../util/flags.js";
import {
  addFlags,
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

export function registerRun(program: Command): void {
  const command = program
    .command("run")
    .description("start a new run on the task in the current folder (or --dir)")
    .option("-C, --dir <path>", "the task's folder")
    .option(
      "-t, --tag <tag>",
      "the run's name; its best line is branch autoresearch/<tag>",
      defaultTag(),
    )
    .option(
      "-r, --researcher <kind>",
      `who proposes: ${RESEARCHERS.map((k) => k.name).join(", ")}; several kinds comma-separated (default: the task file's researcher.kind, else ${RESEARCHERS[0]!.name})`,
    )
    .option(
      "--researchers <n>",
      "researchers of each kind working at once on one ledger",
      positiveInt,
    )
    .option(
      "-n, --max-trials <n>",
      "stop after this many trials, the baseline included",
      positiveInt,
    )
    .option("--max-hours <h>", "start no new trial after this many hours", positiveNumber)
    .option("--seed <n>", "the run's base seed (default: the task file's seed)", positiveInt)
    .option(
      "--record-responses <file>",
      "record the LLM provider's traffic to this file (JSON lines)",
    )
    .option(
      "--fake-responses <file>",
      "replay recorded provider traffic instead of calling the provider",
    )
    .option("--new-ledger", NEW_LEDGER_HELP);
  stopFlags(
    swarmFlags(sandboxFlag(lookaheadFlag(executorFlags(addFlags(command, researcherFlags()))))),
  ).action(async (o) => {
    const io = session();
    try {
      const result = await startRun({
        root: taskRoot(o.dir),
        tag: o.tag,
        researcher: o.researcher,
        model: o.model,
        baseUrl: o.baseUrl,
        researcherFlags: Object.fromEntries(
          researcherFlags().map((f) => [flagName(f), o[flagName(f)]]),
        ),
        maxTrials: o.maxTrials ?? null,
        maxHours: o.maxHours ?? null,
        maxUsd: budgetChoice(o) ?? null,
        stops: stopsChoice(o),
        traffic: traffic(o),
        researchers: o.researchers,
        executor: executorChoice(o),
        ...(o.lookahead !== undefined ? { lookahead: o.lookahead } : {}),
        ...(o.sandbox ? { sandbox: o.sandbox } : {}),
        ...swarmOption(o),
        seed: o.seed,
        newLedger: o.newLedger,
        signal: io.signal,
        emit: io.emit,
      });
      io.close();
      await afterSession(taskRoot(o.dir), result);
    } finally {
      io.close();
    }
  });
}

/** What --new-ledger does, for `run` and `try`. */
export const NEW_LEDGER_HELP =
  "start a new ledger although this task's earlier runs' one is missing or empty (their folders and branches stay, unrecorded)";

/** Today as a short tag such as nov27, the convention of the original project. */
export function defaultTag(now = new Date()): string {
  return `${now.toLocaleString("en", { month: "short" }).toLowerCase()}${now.getDate()}`;
}
