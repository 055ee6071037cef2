import type { TransferTable } from "../ledger/promotions.js";
import type { Verdict } from "../ledger/types.js";
import type { Outcome } from "../metrics/outcome.js";

/** What the orchestrator tells its observers (the terminal display, tests). */
export type RunEvent =
  | {
      type: "run-start";
      tag: string;
      task: string;
      metric: string;
      resumed: boolean;
      researcher: string;
      /** What bounds the replicates, or why nothing does. */
      sandbox: string;
    }
  | { type: "recovered"; interrupted: number; killed: number; recovered: number; continued: number }
  | { type: "slot-set-aside"; slot: string; reason: string }
  /** Something the person should know that changes nothing by itself (a warning, a restart). */
  | { type: "notice"; text: string }
  | { type: "setup-start"; command: string }
  | { type: "setup-end"; seconds: number; skipped: boolean }
  | { type: "trial-start"; n: number; baseline: boolean; adopt?: boolean }
  | { type: "proposal"; n: number; title: string }
  | {
      type: "replicate-start";
      n: number;
      idx: number;
      slot: string;
      title: string;
      budget: number;
      startedAt: number;
    }
  /** A queued job started to run (local processes run at once). */
  | { type: "replicate-running"; n: number; idx: number; at: number }
  | {
      type: "replicate-end";
      n: number;
      idx: number;
      slot: string;
      outcome: Outcome;
      metric: number | null;
    }
  | {
      type: "trial-end";
      n: number;
      baseline: boolean;
      title: string;
      verdict: Verdict;
      metric: number | null;
      reason: string | null;
      best: number | null;
    }
  /** The held-out check of a new incumbent; diverged when it got worse while the metric improved. */
  | {
      type: "verify";
      n: number;
      metric: number | null;
      previous: number | null;
      diverged: boolean;
      reason: string | null;
    }
  | { type: "promotion-start"; id: number; stage: string; incumbent: number }
  | { type: "promotion-end"; id: number; stage: string; table: TransferTable }
  | { type: "run-end"; status: "finished" | "stopped" | "failed"; reason: string };

export type Emit = (event: RunEvent) => void;
