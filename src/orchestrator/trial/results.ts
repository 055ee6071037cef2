import type { Ledger } from "../../ledger/ledger.js";
import { resultsTsv } from "../../ledger/results-tsv.js";
import type { RunRow } from "../../ledger/types.js";
import type { Task } from "../../task/task.js";
import { writeFileAtomic } from "../../util/fs.js";
import { paths } from "../../workspace/layout.js";

/** Rewrites the run's results.tsv from the ledger, which stays the one source of truth. */
export function writeResults(task: Pick<Task, "root">, ledger: Ledger, run: RunRow): string {
  const file = paths.results(task.root, run.tag);
  writeFileAtomic(file, runResultsTsv(ledger, run));
  return file;
}

/**
 * results.tsv of a run, with the metric and secondary metrics the run was started with:
 * an edit of the task file since then must not relabel its columns.
 */
export function runResultsTsv(ledger: Ledger, run: RunRow): string {
  const started = JSON.parse(run.taskJson) as { secondary?: { name: string }[] };
  const secondary = (started.secondary ?? []).map((s) => s.name);
  return resultsTsv(ledger.trials(run.id), run.metric, secondary);
}
