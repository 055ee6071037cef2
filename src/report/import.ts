import { existsSync, readFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { UsageError } from "../errors.js";
import { Ledger } from "../ledger/ledger.js";
import type { RunRow } from "../ledger/types.js";
import type { Goal } from "../metrics/spec.js";
import { branchName, checkTag, excludeStateDir } from "../workspace/repo.js";
import { parseResultsTsv } from "./results-import.js";

export interface ImportOptions {
  /** The folder whose `.autoresearch/ledger.db` receives the run (created if needed). */
  root: string;
  file: string;
  tag: string;
  goal: Goal;
}

const MAX_ERRORS = 20;

/**
 * Records an existing results.tsv (karpathy/autoresearch's format) as a finished run,
 * so that `report` and the dashboard show older history. The first row is the baseline,
 * as in the original's protocol. Commits are stored as given: they need not exist in any
 * repository. All rows are checked before anything is written, and written in one transaction.
 */
export async function importResults(options: ImportOptions): Promise<RunRow> {
  checkTag(options.tag);
  const file = resolve(options.file);
  if (!existsSync(file)) throw new UsageError(`${options.file}: no such file`);
  const parsed = parseResultsTsv(readFileSync(file, "utf8"), options.file);
  if (!parsed.ok) {
    const shown = parsed.errors.slice(0, MAX_ERRORS);
    if (parsed.errors.length > MAX_ERRORS)
      shown.push(`... and ${parsed.errors.length - MAX_ERRORS} more`);
    throw new UsageError(shown.join("\n"));
  }
  const { metricName, rows } = parsed.value;
  const root = resolve(options.root);
  // In a git repository the state folder must not show up as a change.
  if (existsSync(join(root, ".git"))) await excludeStateDir(root).catch(() => undefined);
  const ledger = Ledger.open(root, { verify: true });
  try {
    if (ledger.run(options.tag))
      throw new UsageError(`--tag: run "${options.tag}" already exists in ${root}`);
    return ledger.db.transaction(() => {
      const run = ledger.createRun({
        tag: options.tag,
        taskName: basename(root),
        taskJson: JSON.stringify({
          name: basename(root),
          imported: file,
          metric: { name: metricName, goal: options.goal },
        }),
        metric: metricName,
        goal: options.goal,
        baseCommit: rows[0]!.commit,
        branch: branchName(options.tag),
        researcher: "imported",
        judge: "greedy",
        seed: 0,
        maxTrials: null,
      });
      let incumbent: { commit: string; metric: number | null } | null = null;
      rows.forEach((row, n) => {
        const trial = ledger.createTrial({
          runId: run.id,
          n,
          baseline: n === 0,
          parentCommit: incumbent?.commit ?? row.commit,
          researcher: n === 0 ? "baseline" : "imported",
        });
        ledger.setTrialProposal(trial.id, {
          title: row.description,
          hypothesis: null,
          proposeMs: null,
        });
        ledger.setTrialCommit(trial.id, {
          commit: row.commit,
          commitMs: 0,
          linesAdded: row.linesAdded,
          linesRemoved: row.linesRemoved,
        });
        ledger.finishTrial(trial.id, {
          verdict: row.verdict,
          reason: row.reason ?? `imported from ${basename(file)}:${row.line}`,
          metric: row.metric,
          incumbentMetric: n === 0 ? null : (incumbent?.metric ?? null),
          metrics: row.metrics,
          runMs: row.runMs,
        });
        if (row.verdict === "keep") incumbent = { commit: row.commit, metric: row.metric };
      });
      ledger.setRunStatus(run.id, "finished", `imported from ${basename(file)}`);
      return ledger.runById(run.id)!;
    })();
  } finally {
    ledger.close();
  }
}
