import type { Ledger } from "../../ledger/ledger.js";
import { resultsTsv } from "../../ledger/results-tsv.js";
import type { RunRow } from "../../ledger/types.js";
import type { Task } from "../../task/task.js";
import { monotonic } from "../../util/clock.js";
import { writeFileAtomic } from "../../util/fs.js";
import { paths } from "../../workspace/layout.js";

/** Rewrites the run's results.tsv from the ledger, which stays the one source of truth. */
export function writeResults(task: Pick<Task, "root">, ledger: Ledger, run: RunRow): string {
  const file = paths.results(task.root, run.tag);
  writeFileAtomic(file, runResultsTsv(ledger, run));
  return file;
}

/** What keeps a run's results.tsv up to date as its trials finish. */
export interface ResultsWriter {
  /** A trial finished: rewrite now, or soon when rewriting costs much (see below). */
  soon(): void;
  /** Rewrite now if a rewrite is pending. */
  flush(): void;
}

/**
 * Rewrites results.tsv as trials finish, spending at most about 5% of the time on it:
 * each rewrite reads and formats the whole run, so in a long run one waits until twenty
 * times its own duration has passed since the last. None is lost: a timer writes the
 * pending one, and the session's end writes it at once. A rewrite the timer could not make
 * (a full disk) is raised by the next call, in the orchestrator's own flow.
 */
export function resultsWriter(
  task: Pick<Task, "root">,
  ledger: Ledger,
  run: RunRow,
): ResultsWriter {
  let last = Number.NEGATIVE_INFINITY;
  let cost = 0;
  let timer: NodeJS.Timeout | null = null;
  let failed: unknown = null;
  const write = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    const started = monotonic();
    writeResults(task, ledger, run);
    last = monotonic();
    cost = last - started;
  };
  const raise = () => {
    if (failed === null) return;
    const error = failed;
    failed = null;
    throw error;
  };
  return {
    soon() {
      raise();
      const wait = last + 20 * cost - monotonic();
      if (wait <= 0) write();
      else
        timer ??= setTimeout(() => {
          try {
            write();
          } catch (error) {
            failed = error;
          }
        }, wait);
    },
    flush() {
      raise();
      if (timer) write();
    },
  };
}

/**
 * Waits for `work`, then writes what the writer holds; when `work` failed, its error is the
 * one raised, not a failed write after it.
 */
export async function flushingAfter<T>(results: ResultsWriter, work: Promise<T>): Promise<T> {
  let value: T;
  try {
    value = await work;
  } catch (error) {
    try {
      results.flush();
    } catch {}
    throw error;
  }
  results.flush();
  return value;
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
