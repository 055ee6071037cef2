import type { Ledger } from "../../ledger/ledger.js";
import type { RunRow } from "../../ledger/types.js";
import { loadReportData } from "../data.js";
import { progressSpec } from "../progress.js";
import { renderSvg } from "../render.js";
import { timelineSpec } from "../timeline.js";
import type { LedgerWatch } from "./watch.js";

type Kind = "progress" | "timeline";
/** Replicates the live timeline shows; the report shows them all. */
const TIMELINE_LAST = 400;

/**
 * The dashboard's charts, drawn on the server with the report's specs and kept until the
 * ledger changes: many browsers asking after one trial finished cost one rendering.
 */
export class ChartCache {
  private readonly cache = new Map<string, { version: number; svg: Promise<string | null> }>();

  constructor(
    private readonly ledger: Ledger,
    private readonly watch: LedgerWatch,
  ) {}

  get(run: RunRow, kind: Kind): Promise<string | null> {
    const key = `${run.tag}/${kind}`;
    const version = this.watch.version();
    const hit = this.cache.get(key);
    if (hit && hit.version === version) return hit.svg;
    const svg = this.render(run, kind);
    this.cache.set(key, { version, svg });
    // A failed rendering is not kept: the next request tries again.
    svg.catch(() => this.cache.delete(key));
    return svg;
  }

  private async render(run: RunRow, kind: Kind): Promise<string | null> {
    const data = loadReportData(this.ledger, this.ledger.runById(run.id) ?? run);
    const spec = kind === "progress" ? progressSpec(data) : timelineSpec(data, 900, TIMELINE_LAST);
    return spec ? renderSvg(spec) : null;
  }
}
