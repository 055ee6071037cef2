import { existsSync } from "node:fs";
import type { Command } from "commander";
import { beforeOpening, earlierRuns, missingLedger } from "../ledger/check.js";
import { Ledger } from "../ledger/ledger.js";
import { summarize } from "../orchestrator/index.js";
import { openLedgerReadOnly } from "../report/read-only.js";
import { formatSummary } from "../report/status.js";
import { fmtMetric } from "../report/terminal.js";
import { checkTaskFolder } from "../task/load.js";
import { positiveInt, taskRoot } from "./common.js";

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("the task's runs: best so far, keep rate, what is running")
    .option("-C, --dir <path>", "the task's folder")
    .option("-t, --tag <tag>", "only this run")
    .option("--trials <n>", "also list the last n trials", positiveInt)
    .action((o) => {
      const root = taskRoot(o.dir);
      checkTaskFolder(root);
      const path = Ledger.pathFor(root);
      if (!existsSync(path)) {
        // A task whose runs' folders or trial refs are there has lost its ledger: no new task.
        const missing = beforeOpening(path) ?? missingLedger(path);
        if (missing) throw missing;
        // What `report` says, though a task before its first run is no failure here.
        process.stdout.write(
          `no runs yet in ${root}: no ledger (${path}); start a run with \`autoresearch run\`\n`,
        );
        return;
      }
      // Read-only: status works on a ledger it may not write, and a damaged one found while
      // reading is left as it was (a writing connection would checkpoint into it on closing).
      const ledger = openLedgerReadOnly(root, { upgrade: true });
      // A ledger started anew (--new-ledger) beside earlier runs it does not record says so.
      const none = () => {
        const earlier = earlierRuns(path);
        return earlier
          ? `no runs recorded in ${path}; the task's earlier runs are not in it (${earlier}); start one with \`autoresearch run\`\n`
          : `no runs yet in ${root}; start one with \`autoresearch run\`\n`;
      };
      try {
        const runs = ledger.pickAll(o.tag);
        // A ledger with no run: a first run that stopped before it was recorded.
        if (runs.length === 0 && o.tag === undefined) process.stdout.write(none());
        for (const run of runs) {
          process.stdout.write(`${formatSummary(summarize(root, ledger, run))}\n`);
          if (o.trials) {
            for (const t of ledger.trials(run.id).slice(-o.trials)) {
              // Why a trial failed is what the person needs to fix it.
              const why = t.verdict && t.verdict !== "keep" && t.reason ? `  (${t.reason})` : "";
              process.stdout.write(
                `    #${String(t.n).padEnd(4)} ${(t.verdict ?? t.state).padEnd(11)} ${fmtMetric(t.metric).padEnd(10)} ${t.title ?? ""}${why}\n`,
              );
            }
          }
        }
      } finally {
        ledger.close();
      }
    });
}
