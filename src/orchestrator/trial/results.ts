import type { Ledger } from "../../ledger/ledger.js";
import { resultsTsv } from "../../ledger/results-tsv.js";
import type { RunRow } from "../../ledger/types.js";
import type { Task } from "../../task/task.js";
import { writeFileAtomic } from "../../util/fs.js";
import { paths } from "../../workspace/layout.js";

/** Rewrites the run's results.tsv from the ledger, which stays the one source of truth. */
export function writeResults(task: Task, ledger: Ledger, run: RunRow): string {
  const file = paths.results(task.root, run.tag);
  const secondary = task.secondary.map((s) => s.name);
  writeFileAtomic(file, resultsTsv(ledger.trials(run.id), task.metric.name, secondary));
  return file;
}
