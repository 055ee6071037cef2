import type { MetricSpec, SecondarySpec } from "./spec.js";

export type Metrics = Record<string, number>;

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?%?$/;
const SPECIAL: Record<string, number> = {
  nan: Number.NaN,
  "+nan": Number.NaN,
  "-nan": Number.NaN,
  inf: Number.POSITIVE_INFINITY,
  "+inf": Number.POSITIVE_INFINITY,
  infinity: Number.POSITIVE_INFINITY,
  "-inf": Number.NEGATIVE_INFINITY,
  "-infinity": Number.NEGATIVE_INFINITY,
};

/** A printed value as a number: plain, with exponent or percent sign, or Python's nan/inf; else null. */
export function toNumber(text: string): number | null {
  const t = text.trim();
  if (NUMBER.test(t)) return Number.parseFloat(t);
  const special = SPECIAL[t.toLowerCase()];
  return special ?? null;
}

const KEY_VALUE = /^\s*([A-Za-z_][\w.\-/]*)\s*:\s*(.+?)\s*$/;

/** The "key: value" pairs after the last line that is exactly "---", in order. */
function summaryPairs(log: string): [string, string][] {
  const lines = log.split(/\r?\n/);
  let start = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i]!.trim() === "---") {
      start = i + 1;
      break;
    }
  }
  if (start < 0) return [];
  return lines.slice(start).flatMap((line) => {
    const match = KEY_VALUE.exec(line);
    return match ? [[match[1]!, match[2]!] as [string, string]] : [];
  });
}

/** "key: value" lines after the last line that is exactly "---" (karpathy/autoresearch's summary). */
export function parseSummary(log: string): Metrics {
  const metrics: Metrics = {};
  for (const [key, text] of summaryPairs(log)) {
    const value = toNumber(text);
    if (value !== null) metrics[key] = value;
  }
  return metrics;
}

/**
 * What is wrong with how the summary reports `name`, or null: printed more than once
 * with different values (which one was meant?), or printed but not as a number.
 */
export function summaryProblem(log: string, name: string): string | null {
  const printed = summaryPairs(log)
    .filter(([key]) => key === name)
    .map(([, text]) => text);
  if (printed.length === 0) return null;
  const values = printed.map(toNumber);
  if (values.every((v) => v === null))
    return `${name} is not a number: ${JSON.stringify(clip(printed.at(-1)!))}`;
  const distinct = new Set(values.filter((v) => v !== null).map(String));
  if (distinct.size > 1)
    return `${name} is printed ${printed.length} times with different values (${[...distinct].slice(0, 5).join(", ")})`;
  return null;
}

function clip(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The numeric fields of the last JSON-object line that holds `name` (or of the last object line). */
export function parseJsonLine(log: string, name: string): Metrics {
  const lines = log.split(/\r?\n/);
  let fallback: Metrics | null = null;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.trim();
    if (!line.startsWith("{") || !line.endsWith("}")) continue;
    const metrics = numericFields(line);
    if (!metrics) continue;
    if (name in metrics) return metrics;
    fallback ??= metrics;
  }
  return fallback ?? {};
}

/** Numeric fields of a JSON object text; null if it is not an object. */
export function numericFields(text: string): Metrics | null {
  let value: unknown;
  try {
    // Python's json.dumps writes NaN and Infinity, which JSON.parse refuses.
    value = JSON.parse(text.replace(/\b(-?Infinity|NaN)\b/g, '"$1"'));
  } catch {
    return null;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const metrics: Metrics = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v === "number") metrics[key] = v;
    else if (typeof v === "string") {
      const n = toNumber(v);
      if (n !== null) metrics[key] = n;
    }
  }
  return metrics;
}

/** The last match of `pattern`: its `value` group, else its first group, else the whole match. */
export function parseRegex(log: string, pattern: string): number | null {
  let last: RegExpExecArray | null = null;
  for (const match of log.matchAll(new RegExp(pattern, "gm"))) last = match;
  if (!last) return null;
  return toNumber(last.groups?.value ?? last[1] ?? last[0]);
}

/**
 * Every metric a replicate reported: from its log by the task's parser, then from the
 * result file (AR_RESULT_FILE) if the program wrote one, which wins where both speak.
 */
export function parseMetrics(
  log: string,
  metric: MetricSpec,
  secondary: SecondarySpec[],
  resultFile: string | null = null,
): Metrics {
  let metrics: Metrics;
  if (metric.parser === "summary") metrics = parseSummary(log);
  else if (metric.parser === "json") metrics = parseJsonLine(log, metric.name);
  else {
    metrics = { ...parseSummary(log) };
    const value = parseRegex(log, metric.pattern!);
    if (value !== null) metrics[metric.name] = value;
  }
  for (const s of secondary) {
    if (s.pattern === null) continue;
    const value = parseRegex(log, s.pattern);
    if (value !== null) metrics[s.name] = value;
  }
  if (resultFile) Object.assign(metrics, numericFields(resultFile) ?? {});
  return metrics;
}
