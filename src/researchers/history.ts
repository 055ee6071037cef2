import type { TrialRow } from "../ledger/types.js";
import { improvement } from "../metrics/compare.js";
import type { Goal } from "../metrics/spec.js";

export interface HistoryOptions {
  metric: string;
  goal: Goal;
  /** Secondary metrics worth showing beside the metric. */
  secondary: string[];
  /** The most tokens the history may take (estimated as characters / 4). */
  budgetTokens: number;
  /** Log tails of recent crashes, by trial number. */
  crashTails?: Map<number, string>;
  /** Titles of trials running right now, so that work is not duplicated. */
  inFlight?: string[];
  /** In a swarm: the other hosts' latest trials, one line each. */
  elsewhere?: string[];
}

export const estimateTokens = (text: string) => Math.ceil(text.length / 4);

const fmt = (x: number | null) => (x === null ? "—" : Number(x.toPrecision(6)).toString());
const clip = (text: string | null, width: number) => {
  const t = (text ?? "").replace(/\s+/g, " ").trim();
  return t.length > width ? `${t.slice(0, width - 1)}…` : t;
};

interface Shape {
  recent: number;
  nearMisses: number;
  crashes: number;
  tailLines: number;
  titleWidth: number;
}

/**
 * The run so far, for a researcher's first message: every kept change in order, the
 * most recent trials, the near misses, the last crashes with their log tails, and a
 * summary of the directions tried without success among the rest. It is compacted until
 * it fits `budgetTokens`: fewer recent trials, near misses and crash lines, shorter
 * titles. Kept changes are never dropped.
 */
export function formatHistory(trials: TrialRow[], options: HistoryOptions): string {
  const done = trials.filter((t) => t.state === "done");
  let shape: Shape = { recent: 40, nearMisses: 10, crashes: 3, tailLines: 20, titleWidth: 120 };
  let text = render(done, options, shape);
  for (let round = 0; estimateTokens(text) > options.budgetTokens && round < 12; round++) {
    shape = {
      recent: Math.floor(shape.recent / 2),
      nearMisses: Math.floor(shape.nearMisses / 2),
      crashes: Math.max(0, shape.crashes - 1),
      tailLines: Math.floor(shape.tailLines / 2),
      titleWidth: Math.max(24, Math.floor(shape.titleWidth * 0.75)),
    };
    text = render(done, options, shape);
  }
  return text;
}

function render(trials: TrialRow[], o: HistoryOptions, s: Shape): string {
  if (trials.length === 0) return "No trials yet.";
  const byN = new Map(trials.map((t) => [t.n, t]));
  const line = (t: TrialRow) => {
    const extras = o.secondary
      .filter((name) => t.metrics[name] !== undefined)
      .map((name) => `${name} ${fmt(t.metrics[name]!)}`)
      .join(", ");
    const why = t.verdict === "keep" || t.verdict === "discard" ? "" : ` (${clip(t.reason, 80)})`;
    return `#${t.n} ${t.verdict} ${o.metric} ${fmt(t.metric)}${extras ? ` [${extras}]` : ""} — ${clip(t.title, s.titleWidth)}${why}`;
  };
  const parts: string[] = [];

  const keeps = trials.filter((t) => t.verdict === "keep");
  parts.push(`Kept changes, in order (${keeps.length}):`);
  for (const t of keeps) {
    const parent = t.incumbentMetric;
    const gain =
      parent !== null && t.metric !== null
        ? ` (${versus(improvement(t.metric, parent, o.goal))} its parent)`
        : "";
    parts.push(`  #${t.n} ${o.metric} ${fmt(t.metric)}${gain} — ${clip(t.title, s.titleWidth)}`);
  }

  const recent = s.recent > 0 ? trials.slice(-s.recent) : [];
  const shown = new Set([...keeps, ...recent].map((t) => t.n));
  if (recent.length) {
    parts.push("", `The last ${recent.length} trials:`);
    for (const t of recent) parts.push(`  ${line(t)}`);
  }

  const near = trials
    .filter(
      (t) =>
        t.verdict === "discard" &&
        t.metric !== null &&
        t.incumbentMetric !== null &&
        !shown.has(t.n),
    )
    .sort(
      (a, b) =>
        improvement(b.metric!, b.incumbentMetric!, o.goal) -
        improvement(a.metric!, a.incumbentMetric!, o.goal),
    )
    .slice(0, s.nearMisses);
  if (near.length) {
    parts.push("", "Near misses (discarded, closest to beating their incumbent):");
    for (const t of near) {
      shown.add(t.n);
      parts.push(
        `  ${line(t)} (${versus(improvement(t.metric!, t.incumbentMetric!, o.goal))} its incumbent)`,
      );
    }
  }

  const crashes = trials
    .filter((t) => t.verdict === "crash" || t.verdict === "timeout")
    .slice(-s.crashes);
  if (crashes.length && s.tailLines > 0) {
    parts.push("", "Recent crashes, with the end of their logs:");
    for (const t of crashes) {
      parts.push(`  ${line(t)}`);
      const tail = o.crashTails?.get(t.n);
      if (tail)
        for (const l of tail.split("\n").slice(-s.tailLines)) parts.push(`    | ${clip(l, 160)}`);
    }
  }

  const rest = trials.filter((t) => !shown.has(t.n) && !byN.get(t.n)?.baseline);
  if (rest.length) {
    const counts = new Map<string, number>();
    for (const t of rest) counts.set(t.verdict ?? "?", (counts.get(t.verdict ?? "?") ?? 0) + 1);
    const summary = [...counts].map(([v, c]) => `${c} ${v}`).join(", ");
    parts.push(
      "",
      `${rest.length} earlier trials not listed (${summary}). Directions tried there without a keep:`,
    );
    parts.push(`  ${directions(rest.filter((t) => t.verdict !== "keep")).join(", ") || "—"}`);
  }

  if (o.elsewhere?.length) {
    parts.push(
      "",
      "The other hosts' latest trials (values from another hardware class do not compare with these):",
    );
    for (const line of o.elsewhere) parts.push(`  ${clip(line, s.titleWidth + 60)}`);
  }
  if (o.inFlight?.length) {
    parts.push("", "Running right now (do not duplicate):");
    for (const title of o.inFlight) parts.push(`  ${clip(title, s.titleWidth)}`);
  }
  return parts.join("\n");
}

/** The names and words that recur in titles of unsuccessful trials, with how often. */
function directions(trials: TrialRow[]): string[] {
  const counts = new Map<string, number>();
  for (const t of trials) {
    // The harness's own notes in a title ("(rebased from #4)") are no direction.
    const title = (t.title ?? "").replace(/\((rebased|reconciled) from #\d+\)/g, "");
    // Parameter names, however short (X, LR), and longer words.
    const words = new Set(title.match(/\b[A-Z][A-Z0-9_]*\b|\b[a-z][a-z0-9_]{3,}\b/g) ?? []);
    for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  return [...counts]
    .filter(([, c]) => c > 1)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 20)
    .map(([w, c]) => `${w} ×${c}`);
}

/** "better than by 0.01" reads badly; "0.01 better than" reads right for either goal. */
function versus(gain: number): string {
  const size = Number(Math.abs(gain).toPrecision(3));
  return gain >= 0 ? `${size} better than` : `${size} worse than`;
}
