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

/** The index of the last line that is exactly "---", or -1. */
function lastSeparator(lines: string[]): number {
  for (let i = lines.length - 1; i >= 0; i--) if (lines[i]!.trim() === "---") return i;
  return -1;
}

/** The "key: value" pairs after the last line that is exactly "---", in order. */
function summaryPairs(log: string): [string, string][] {
  const lines = log.split(/\r?\n/);
  const separator = lastSeparator(lines);
  if (separator < 0) return [];
  return lines.slice(separator + 1).flatMap((line) => {
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

/**
 * Why `metric` was not found in the output, for a program that printed it some other
 * way: what the parser reads, where it looked, and where the name does appear (with the
 * parser that would read it there).
 */
export function unreported(log: string, metric: MetricSpec): string {
  const { name } = metric;
  const lines = log.split(/\r?\n/);
  const separator = lastSeparator(lines);
  const seen = lastMention(lines, name);
  let why: string;
  if (!lines.some((l) => l.trim() && !l.startsWith("[autoresearch]"))) why = "the output is empty";
  else if (metric.parser === "summary") {
    why = `the summary parser reads "key: value" lines after the last line that is exactly "---"`;
    if (separator < 0) why += "; the output has no such line";
    // With the block there and no trace of the name, the block itself says enough.
    else if (seen === null) return `${name} was not reported`;
    else why += `, line ${separator + 1}; none of them is ${name}`;
  } else if (metric.parser === "json")
    why = `the json parser reads the last line that is a JSON object holding "${name}"; none does`;
  else why = `metric.pattern '${metric.pattern}' matched nothing`;
  if (seen === null) return `${name} was not reported: ${why}`;
  const line = clip(seen.text.trim());
  const at = `it printed "${line}" on line ${seen.index + 1}`;
  return `${name} was not reported: ${why} (${at})${hint(seen.text.trim(), name, metric.parser, separator)}`;
}

/** The last line, not the harness's own, that names `name` (preferring one with a number after it). */
function lastMention(lines: string[], name: string): { index: number; text: string } | null {
  const word = `(?<![\\w.])${escapeRegex(name)}(?![\\w])`;
  const mention = new RegExp(word);
  const withValue = new RegExp(`${word}\\W{0,5}[-+]?(?:\\d|\\.\\d|nan|inf)`, "i");
  let fallback: { index: number; text: string } | null = null;
  for (let i = lines.length - 1; i >= 0; i--) {
    const text = lines[i]!;
    if (text.startsWith("[autoresearch]") || !mention.test(text)) continue;
    if (withValue.test(text)) return { index: i, text };
    fallback ??= { index: i, text };
  }
  return fallback;
}

/** What would read `line`: another metric.parser, or the "---" the summary needs. */
function hint(line: string, name: string, parser: MetricSpec["parser"], separator: number): string {
  if (parser !== "json" && line.startsWith("{") && line.endsWith("}"))
    return "; for JSON lines, set metric.parser: json";
  if (parser === "regex") return "";
  if (parser === "summary" && KEY_VALUE.exec(line)?.[1] === name)
    return separator < 0 ? '; print a line "---" before the summary' : "";
  const printed = new RegExp(`${escapeRegex(name)}(\\W{0,5}?)[-+]?(?:\\d|\\.\\d)`).exec(line);
  if (!printed) return "";
  const pattern = `${escapeRegex(name)}${escapeRegex(printed[1]!)}([-+0-9.eE]+)`;
  return `; to read it as printed, set metric.parser: regex and metric.pattern: '${pattern}'`;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
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
