import type { Verdict } from "../ledger/types.js";
import type { Emit, RunEvent } from "../orchestrator/events.js";
import { formatSeconds } from "../util/units.js";
import { formatTransfer } from "./transfer.js";

interface SlotState {
  slot: string;
  n: number;
  title: string;
  startedAt: number;
  budget: number;
  /** Waiting in a cluster's queue: no progress to show yet. */
  queued: boolean;
}

const COLORS: Record<Verdict, string> = {
  keep: "\x1b[32m",
  discard: "\x1b[2m",
  crash: "\x1b[31m",
  timeout: "\x1b[31m",
  invalid: "\x1b[33m",
  tampered: "\x1b[35m",
  interrupted: "\x1b[33m",
};
const RESET = "\x1b[0m";
const BAR = 20;

export const fmtMetric = (x: number | null) =>
  x === null ? "—" : Number(x.toPrecision(6)).toString();

/**
 * Shows a run as it goes. On a terminal, a live block at the bottom holds one line per
 * busy slot (trial, progress against the budget) and the best so far; finished trials
 * scroll above it. Elsewhere (a log file, CI) every event is one plain line.
 */
export interface Output {
  write(text: string): unknown;
  /** The terminal's width, where known. */
  columns?: number;
}

export function createTerminalDisplay(
  out: Output,
  live: boolean,
): {
  emit: Emit;
  close: () => void;
} {
  const slots = new Map<string, SlotState>();
  let metric = "metric";
  let trials = 0;
  let kept = 0;
  let best: number | null = null;
  let drawn = 0;
  const color = live;
  const paint = (text: string, verdict: Verdict) =>
    color ? `${COLORS[verdict]}${text}${RESET}` : text;

  const clearBlock = () => {
    if (!live || drawn === 0) return;
    out.write(`\x1b[${drawn}A\x1b[0J`);
    drawn = 0;
  };
  const drawBlock = () => {
    if (!live) return;
    const width = out.columns ?? 100;
    const lines = [`best ${metric} ${fmtMetric(best)} · ${trials} trials · ${kept} kept`];
    for (const s of slots.values()) {
      const id = s.slot;
      const elapsed = (Date.now() - s.startedAt) / 1000;
      if (s.queued) {
        lines.push(`${id.padEnd(6)} #${s.n} queued for ${formatSeconds(elapsed)}  ${s.title}`);
        continue;
      }
      const filled = Math.min(BAR, Math.round((elapsed / s.budget) * BAR));
      const bar = "█".repeat(filled) + "░".repeat(BAR - filled);
      lines.push(
        `${id.padEnd(6)} #${s.n} ${bar} ${formatSeconds(elapsed)}/${formatSeconds(s.budget)}  ${s.title}`,
      );
    }
    out.write(`${lines.map((l) => l.slice(0, width - 1)).join("\n")}\n`);
    drawn = lines.length;
  };
  const print = (line: string) => {
    clearBlock();
    out.write(`${line}\n`);
    drawBlock();
  };
  const refresh = () => {
    clearBlock();
    drawBlock();
  };
  const timer = live ? setInterval(refresh, 250) : null;
  timer?.unref();

  const emit = (event: RunEvent) => {
    switch (event.type) {
      case "run-start":
        metric = event.metric;
        print(
          `${event.resumed ? "resuming" : "starting"} run ${event.tag} of ${event.task} · researcher ${event.researcher}`,
        );
        print(event.sandbox);
        break;
      case "recovered": {
        const parts = [
          `${event.continued} trial(s) continued`,
          `${event.interrupted} recorded as interrupted`,
          `${event.killed} orphaned process group(s) ended`,
          ...(event.recovered
            ? [`${event.recovered} finished replicate(s) read back from their logs`]
            : []),
        ];
        print(`recovered: ${parts.join(", ")}`);
        break;
      }
      case "notice":
        print(event.text);
        break;
      case "slot-set-aside":
        print(`slot ${event.slot} set aside: ${event.reason}`);
        break;
      case "setup-start":
        print(`setup: ${event.command}`);
        break;
      case "setup-end":
        print(
          event.skipped
            ? "setup: already done on this machine"
            : `setup: done in ${formatSeconds(event.seconds)}`,
        );
        break;
      case "trial-start":
        if (!live)
          print(
            `#${event.n} ${event.baseline ? "baseline" : event.adopt ? "adopting the swarm's line" : "proposing"}`,
          );
        break;
      case "proposal":
        if (!live) print(`#${event.n} proposed: ${event.title}`);
        break;
      // Keyed by replicate: with overlap, one waits on a slot beside the one that runs.
      case "replicate-start":
        slots.set(`${event.n}.${event.idx}`, {
          slot: event.slot,
          n: event.n,
          title: event.title,
          startedAt: event.startedAt,
          budget: event.budget,
          queued: true,
        });
        if (live) refresh();
        break;
      case "replicate-running": {
        const s = slots.get(`${event.n}.${event.idx}`);
        if (s) {
          s.queued = false;
          s.startedAt = event.at;
        }
        if (live) refresh();
        else if (s) print(`#${event.n} replicate ${event.idx} running on ${s.slot}`);
        break;
      }
      case "replicate-end":
        slots.delete(`${event.n}.${event.idx}`);
        if (live) refresh();
        break;
      case "trial-end": {
        trials++;
        if (event.verdict === "keep" && !event.baseline) kept++;
        best = event.best;
        const verdict = paint(event.verdict.padEnd(11), event.verdict);
        // A discard says why too: under the confirm judge a better-looking value can be noise.
        const why = event.verdict === "keep" || !event.reason ? "" : `  (${event.reason})`;
        print(
          `#${String(event.n).padEnd(4)} ${verdict} ${metric} ${fmtMetric(event.metric).padEnd(10)} ${event.title}${why}`,
        );
        break;
      }
      case "verify": {
        const was = event.previous === null ? "" : ` (was ${fmtMetric(event.previous)})`;
        const flag = event.diverged ? " — worse while the search metric improved" : "";
        const why = event.metric === null ? ` (${event.reason})` : "";
        print(`#${event.n} held-out ${fmtMetric(event.metric)}${was}${flag}${why}`);
        break;
      }
      case "promotion-start":
        print(
          `promoting #${event.incumbent} to stage ${event.stage} (promotion ${event.id}): baseline, incumbent and leave-one-out ablations`,
        );
        break;
      case "promotion-end":
        print(formatTransfer(event.table));
        break;
      case "run-end":
        print(`run ${event.status}: ${event.reason}`);
        break;
    }
  };
  return {
    emit,
    close: () => {
      if (timer) clearInterval(timer);
      clearBlock();
    },
  };
}
