import type { SlotSpan } from "./queries.js";

export interface SlotUsage {
  slot: string;
  replicates: number;
  busyMs: number;
  /** Busy time over the run's span (first start to last end): 1 means never idle. */
  utilisation: number | null;
}

/** How busy each slot was; the rest of the run's span it sat idle. */
export function slotUsage(spans: SlotSpan[], now = Date.now()): SlotUsage[] {
  if (spans.length === 0) return [];
  let start = Number.POSITIVE_INFINITY;
  let end = Number.NEGATIVE_INFINITY;
  const bySlot = new Map<string, SlotUsage>();
  for (const s of spans) {
    const usage = bySlot.get(s.slot) ?? {
      slot: s.slot,
      replicates: 0,
      busyMs: 0,
      utilisation: null,
    };
    const finished = s.finishedAt ?? now;
    usage.replicates++;
    usage.busyMs += finished - s.startedAt;
    start = Math.min(start, s.startedAt);
    end = Math.max(end, finished);
    bySlot.set(s.slot, usage);
  }
  const span = end - start;
  return [...bySlot.values()]
    .map((u) => ({ ...u, utilisation: span > 0 ? Math.min(1, u.busyMs / span) : null }))
    .sort((a, b) => a.slot.localeCompare(b.slot, "en", { numeric: true }));
}
