import { VERDICTS, type Verdict } from "../ledger/types.js";

/** One row of a karpathy/autoresearch results.tsv, checked. */
export interface ImportedRow {
  line: number;
  commit: string;
  /** null for crashes, which the format records as 0. */
  metric: number | null;
  status: "keep" | "discard" | "crash";
  description: string;
  /** Our finer verdict where the file has our extra `verdict` column, else from status. */
  verdict: Verdict;
  reason: string | null;
  linesAdded: number;
  linesRemoved: number;
  runMs: number | null;
  /** memory_gb and any other numeric columns. */
  metrics: Record<string, number>;
}

export interface ParsedResults {
  metricName: string;
  rows: ImportedRow[];
}

const STATUSES = ["keep", "discard", "crash"] as const;
/** Columns of our own results.tsv that are not metrics. */
const KNOWN = new Set(["trial", "verdict", "lines_added", "lines_removed", "seconds", "reason"]);

/**
 * Parses results.tsv in karpathy/autoresearch's format: `commit, <metric>, memory_gb,
 * status, description`, tab-separated, the metric column named after the metric; extra
 * columns (as our own results.tsv has) are read where known. Returns every problem at
 * once, each naming the line and the field.
 */
export function parseResultsTsv(
  text: string,
  file: string,
): { ok: true; value: ParsedResults } | { ok: false; errors: string[] } {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const header = (lines[0] ?? "").split("\t").map((h) => h.trim());
  const errors: string[] = [];
  const expected = ["commit", "<metric>", "memory_gb", "status", "description"];
  if (header.length < 5 || header[0] !== "commit" || header[3] !== "status" || !header[1])
    return {
      ok: false,
      errors: [
        `${file}:1: header: expected the columns ${expected.join(", ")} separated by tabs, got "${lines[0] ?? ""}"`,
      ],
    };
  const metricName = header[1];
  const rows: ImportedRow[] = [];
  for (let i = 1; i < lines.length; i++) {
    const raw = lines[i]!;
    if (raw.trim() === "") continue;
    const at = `${file}:${i + 1}`;
    let fields = raw.split("\t");
    if (fields.length < 5) {
      errors.push(
        `${at}: expected ${header.length} tab-separated fields (${header.join(", ")}), got ${fields.length}`,
      );
      continue;
    }
    // The original's descriptions are free text: tabs beyond the header's columns stay in it.
    const surplus = fields.length - header.length;
    if (surplus > 0)
      fields = [
        ...fields.slice(0, 4),
        fields.slice(4, 5 + surplus).join(" "),
        ...fields.slice(5 + surplus),
      ];
    const get = (name: string) => fields[header.indexOf(name)]?.trim() ?? "";
    const number = (name: string, value: string, optional: boolean): number | null => {
      if (value === "" && optional) return null;
      const x = Number(value);
      if (value === "" || !Number.isFinite(x)) {
        errors.push(`${at}: ${name}: must be a number, got "${value}"`);
        return null;
      }
      return x;
    };
    const commit = fields[0]!.trim();
    if (!/^\S+$/.test(commit)) errors.push(`${at}: commit: must be a commit id, got "${commit}"`);
    const status = fields[3]!.trim() as ImportedRow["status"];
    if (!STATUSES.includes(status))
      errors.push(`${at}: status: must be one of ${STATUSES.join(", ")}, got "${fields[3]}"`);
    const metric = number(metricName, fields[1]!.trim(), status === "crash");
    const metrics: Record<string, number> = {};
    header.forEach((name, col) => {
      if (col === 1 || col === 3 || col === 4 || col === 0 || KNOWN.has(name)) return;
      const value = number(name, fields[col]?.trim() ?? "", true);
      if (value !== null) metrics[name] = value;
    });
    const verdict = verdictOf(get("verdict"), status);
    const seconds = number("seconds", get("seconds"), true);
    rows.push({
      line: i + 1,
      commit,
      metric: status === "crash" ? null : metric,
      status,
      description: fields[4]!.trim(),
      verdict,
      reason: get("reason") || null,
      linesAdded: Number.parseInt(get("lines_added"), 10) || 0,
      linesRemoved: Number.parseInt(get("lines_removed"), 10) || 0,
      runMs: seconds === null ? null : Math.round(seconds * 1000),
      metrics,
    });
  }
  if (rows.length === 0 && errors.length === 0) errors.push(`${file}: no rows after the header`);
  return errors.length ? { ok: false, errors } : { ok: true, value: { metricName, rows } };
}

/** Our verdict column refines the status (a timeout is a crash there); it never contradicts it. */
function verdictOf(column: string, status: ImportedRow["status"]): Verdict {
  const verdict = VERDICTS.find((v) => v === column);
  if (!verdict) return status;
  const agrees =
    status === "crash" ? verdict !== "keep" && verdict !== "discard" : verdict === status;
  return agrees ? verdict : status;
}
