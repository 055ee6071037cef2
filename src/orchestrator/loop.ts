import type { RunStatus } from "../ledger/types.js";
import { processStartTime } from "../util/proc.js";
import type { RunContext } from "./context.js";
import { runTrial } from "./trial.js";

export interface Limits {
  /** Total trials of the run, the baseline included. */
  maxTrials: number | null;
  /** Epoch milliseconds after which no new trial starts. */
  deadline: number | null;
}

export interface LoopEnd {
  status: Exclude<RunStatus, "running">;
  reason: string;
}

/**
 * Runs trials until a limit is reached, the run is stopped, or it cannot go on.
 * The run is marked as owned by this process for as long as the loop runs.
 */
export async function drive(ctx: RunContext, limits: Limits): Promise<LoopEnd> {
  const { ledger, run } = ctx;
  ledger.setOwner(run.id, process.pid, processStartTime(process.pid));
  ledger.setRunStatus(run.id, "running");
  const end = (result: LoopEnd): LoopEnd => {
    ledger.setRunStatus(run.id, result.status, result.reason);
    ledger.event(run.id, null, "run-end", result);
    ctx.emit({ type: "run-end", ...result });
    return result;
  };
  try {
    for (;;) {
      if (ctx.signal.aborted) return end({ status: "stopped", reason: "stopped by the user" });
      const count = ledger.countTrials(run.id);
      if (limits.maxTrials !== null && count >= limits.maxTrials)
        return end({ status: "finished", reason: `reached --max-trials ${limits.maxTrials}` });
      if (limits.deadline !== null && Date.now() >= limits.deadline)
        return end({ status: "finished", reason: "reached --max-hours" });
      const { fatal } = await runTrial(ctx, ledger.nextTrialNumber(run.id));
      if (fatal) return end({ status: "failed", reason: fatal });
    }
  } catch (error) {
    end({ status: "failed", reason: (error as Error).message });
    throw error;
  } finally {
    ledger.setOwner(run.id, null, null);
  }
}
