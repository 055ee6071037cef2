import type { TrialRow } from "../ledger/types.js";
import type { Task } from "../task/task.js";

/** What a researcher is given to propose one trial. */
export interface ProposalRequest {
  task: Task;
  tag: string;
  /** The number the proposed trial will have. */
  trial: number;
  /** A checkout of the parent commit; the researcher edits files here and nowhere else. */
  worktree: string;
  parent: { commit: string; metric: number | null };
  /** Finished trials of the run, oldest first. */
  history: TrialRow[];
  /** Seed for any randomness, so a resumed run proposes the same things. */
  seed: number;
  signal: AbortSignal;
}

export type ProposalResult =
  | { ok: true; title: string; hypothesis: string; detail?: unknown }
  /** `fatal`: the researcher cannot go on (missing key, rejected credentials); the run stops. */
  | { ok: false; reason: string; fatal?: boolean; detail?: unknown };

/**
 * Proposes the next change.
 * Contract: edits only files inside `request.worktree`; returns the title and hypothesis
 * of what it changed. Failures (no idea, a malformed answer, a refused API call) are
 * returned as `{ ok: false }`, never thrown. The harness, not the researcher, decides
 * whether the edited paths are allowed.
 */
export interface Researcher {
  readonly name: string;
  propose(request: ProposalRequest): Promise<ProposalResult>;
}
