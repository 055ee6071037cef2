import type { Ledger } from "../../ledger/ledger.js";
import type { RunRow } from "../../ledger/types.js";
import { loadReportData } from "../data.js";
import { progressSpec } from "../progress.js";
import { renderSvg } from "../render.js";
import { timelineSpec } from "../timeline.js";
import { type RunView, runView } from "./views.js";
import type { LedgerWatch } from "./watch.js";

export type ChartKind = "progress" | "timeline";
/** Replicates the live timeline shows; the report shows them all. */
const TIMELINE_LAST = 400;
/** Sets kept per run, so that a page still loading the previous one gets it whole. */
const KEEP = 3;

/**
 * A run at one moment: its headline numbers and both charts, read in one transaction.
 * The page shows the numbers only together with these charts, so that the boxes never
 * say "2 experiments" beside a chart titled "1 experiment".
 */
export interface ChartSet {
  /** Names the set in chart URLs (`?set=`). */
  id: number;
  summary: RunView;
  svg: Record<ChartKind, Promise<string | null>>;
}

/**
 * The dashboard's charts, drawn on the server with the report's specs and kept until the
 * ledger changes: many browsers asking after one trial finished cost one rendering.
 */
export class ChartCache {
  private readonly sets = new Map<string, { version: number; set: ChartSet }[]>();
  private nextId = 1;

  constructor(
    private readonly ledger: Ledger,
    private readonly watch: LedgerWatch,
  ) {}

  /** The run as it is now: the last set drawn if the ledger has not changed since. */
  current(run: RunRow): ChartSet {
    const version = this.watch.version();
    const kept = this.sets.get(run.tag) ?? [];
    const last = kept.at(-1);
    if (last && last.version === version) return last.set;
    const set = this.draw(run);
    kept.push({ version, set });
    if (kept.length > KEEP) kept.shift();
    this.sets.set(run.tag, kept);
    // A failed rendering is not kept: the next request tries again.
    const forget = () => {
      const at = kept.findIndex((k) => k.set === set);
      if (at >= 0) kept.splice(at, 1);
    };
    for (const svg of Object.values(set.svg)) svg.catch(forget);
    return set;
  }

  /** The set `id` names while it is kept, else the current one. */
  get(run: RunRow, id: number | null): ChartSet {
    const hit = this.sets.get(run.tag)?.find((k) => k.set.id === id);
    return hit?.set ?? this.current(run);
  }

  private draw(run: RunRow): ChartSet {
    // One read transaction: the numbers and the charts describe the same moment, even
    // while the orchestrator commits between the queries.
    const { data, summary } = this.ledger.db.transaction(() => {
      const fresh = this.ledger.runById(run.id) ?? run;
      return { data: loadReportData(this.ledger, fresh), summary: runView(this.ledger, fresh) };
    })();
    const timeline = timelineSpec(data, 900, TIMELINE_LAST);
    return {
      id: this.nextId++,
      summary,
      svg: {
        progress: renderSvg(progressSpec(data)),
        timeline: timeline ? renderSvg(timeline) : Promise.resolve(null),
      },
    };
  }
}
