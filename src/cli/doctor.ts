import type { Command } from "commander";
import { doctorRuns, sandboxReport } from "../orchestrator/index.js";
import { taskRoot } from "./common.js";

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description(
      "check the ledger's indexes and each run's records: replicates, refs, branch, results.tsv, nothing left in flight",
    )
    .option("-C, --dir <path>", "the task's folder")
    .option("-t, --tag <tag>", "only this run")
    .option(
      "--fix",
      "repair a run no orchestrator drives: end orphans, record trials in flight, fix branch and files; rebuild the ledger's indexes",
    )
    .action(async (o) => {
      const found = await doctorRuns({ root: taskRoot(o.dir), tag: o.tag, fix: o.fix === true });
      const reports = found.runs;
      const sandbox = sandboxReport(taskRoot(o.dir));
      process.stdout.write(`${sandbox.summary}\n`);
      if (found.indexesFixed)
        process.stdout.write(
          `ledger: fixed indexes: ${found.indexesFixed} (rebuilt from the tables)\n`,
        );
      const mend =
        found.indexesLeft ??
        "`autoresearch doctor --fix` rebuilds the indexes from the tables, which hold the records";
      if (found.indexes)
        process.stdout.write(
          `ledger: indexes: ${found.indexes}; queries may miss records, so the runs are not checked: ${mend}\n`,
        );
      // A task file whose sandbox this machine cannot use stops a new run here, and any
      // run that takes it; one that records a --sandbox of its own goes on with that.
      let bad = !sandbox.usable && (reports.length === 0 || reports.some((r) => !r.sandbox));
      bad ||= found.indexes !== null;
      for (const r of reports) {
        const state = r.live ? " (an orchestrator is driving it now)" : "";
        if (r.sandbox) process.stdout.write(`run ${r.tag}: ${r.sandbox}\n`);
        for (const p of r.fixed)
          process.stdout.write(`run ${r.tag}: fixed ${p.check}: ${p.detail}\n`);
        if (r.problems.length === 0) process.stdout.write(`run ${r.tag}: ok${state}\n`);
        for (const p of r.problems) process.stdout.write(`run ${r.tag}: ${p.check}: ${p.detail}\n`);
        bad ||= r.problems.length > 0;
      }
      if (reports.length === 0 && !found.indexes) process.stdout.write("no runs yet\n");
      if (bad) process.exitCode = 1;
    });
}
