import { type Session, timeWithin } from "../ledger/sessions.js";
import type { SlotSpan } from "./queries.js";

export interface SlotUsage {
  slot: string;
  replicates: number;
  busyMs: number;
  /**
   * Busy time over the run's span (first start to last end) while its sessions ran (not
   * between a stop and a resume): 1 means never idle.
   */
  utilisation: number | null;
}

/**
 * How busy each slot was; the rest of the run's span, within `sessions` (all of it when
 * none are recorded), it sat idle.
 */
export function slotUsage(
  spans: SlotSpan[],
  sessions: readonly Session[] = [],
  now = Date.now(),
): SlotUsage[] {
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
    usage.busyMs += timeWithin(sessions, s.startedAt, finished);
    start = Math.min(start, s.startedAt);
    end = Math.max(end, finished);
    bySlot.set(s.slot, usage);
  }
  const span = timeWithin(sessions, start, end);
  return [...bySlot.values()]
    .map((u) => ({ ...u, utilisation: span > 0 ? Math.min(1, u.busyMs / span) : null }))
    .sort((a, b) => a.slot.localeCompare(b.slot, "en", { numeric: true }));
}
