/**
 * HTML building blocks shared by the report and the dashboard. Everything they show —
 * titles, hypotheses, diffs, logs — comes from a model or a program, so every piece of
 * text goes through `escapeHtml`; markup is only ever our own.
 */

const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for an HTML text node or a quoted attribute value. */
export function escapeHtml(text: unknown): string {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** A number with up to six significant digits; a dash for none. */
export function fmtNumber(x: number | null | undefined, digits = 6): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "—";
  return Number(x.toPrecision(digits)).toString();
}

export function fmtPercent(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined ? "—" : `${(x * 100).toFixed(digits)}%`;
}

/** A relative change in percent with two decimals, or with as many more as a change
 * that small needs: a gain of 0.001 % is not shown as "0.00%". */
export function fmtPercentChange(x: number): string {
  const pct = Number(Math.abs(x * 100).toPrecision(2)); // 0.000999… is 0.001: two figures
  const digits = pct === 0 || pct >= 0.01 ? 2 : Math.min(8, 1 - Math.floor(Math.log10(pct)));
  return `${(x * 100).toFixed(digits)}%`;
}

/** A signed number: "+0.0123", "−0.5". */
export function fmtSigned(x: number | null | undefined): string {
  if (x === null || x === undefined) return "—";
  return `${x >= 0 ? "+" : "−"}${fmtNumber(Math.abs(x), 4)}`;
}

export function fmtTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}

/** A class for each line of a unified diff, so that additions and removals can be coloured. */
function diffLineClass(line: string): string {
  if (line.startsWith("+++") || line.startsWith("---") || line.startsWith("diff ")) return "file";
  if (line.startsWith("@@")) return "hunk";
  if (line.startsWith("+")) return "add";
  if (line.startsWith("-")) return "del";
  return "ctx";
}

/**
 * A unified diff as escaped, line-classed HTML inside a <pre>. Each line is a block of
 * its own (so that its colour spans the width), hence no newline between them.
 */
export function renderDiff(diff: string): string {
  const lines = diff.replace(/\n$/, "").split("\n");
  const body = lines
    .map((line) => `<span class="${diffLineClass(line)}">${escapeHtml(line) || " "}</span>`)
    .join("");
  return `<pre class="diff">${body}</pre>`;
}

/** Rows of a two-column table of facts; rows whose value is null are left out. */
export function factRows(facts: [string, string | null][]): string {
  return facts
    .filter((f): f is [string, string] => f[1] !== null)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`)
    .join("\n");
}

/** The CSS for diffs and tables, shared by the report (inline) and the dashboard (served). */
export const BASE_CSS = `
:root { color-scheme: light; --fg: #1f2328; --muted: #59636e; --line: #d0d7de; --keep: #1a7f37; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg); margin: 0; background: #fff; }
main { max-width: 1100px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.muted { color: var(--muted); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { font-weight: 600; }
table.facts { width: auto; } table.facts th { color: var(--muted); font-weight: normal; padding-right: 24px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.chart svg, .chart img { max-width: 100%; height: auto; }
pre { background: #f6f8fa; border: 1px solid #eaeef2; border-radius: 6px; padding: 8px 12px; overflow-x: auto; font: 12px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
pre.diff span { display: block; white-space: pre; }
pre.diff .add { background: #dafbe1; color: #116329; }
pre.diff .del { background: #ffebe9; color: #82071e; }
pre.diff .hunk { color: #0550ae; }
pre.diff .file { color: var(--muted); font-weight: 600; }
details { margin: 6px 0; } summary { cursor: pointer; }
.verdict { display: inline-block; padding: 0 6px; border-radius: 10px; font-size: 12px; color: #fff; background: #8c959f; }
.v-keep { background: #1a7f37; } .v-crash { background: #cf222e; } .v-timeout { background: #bc4c00; }
.v-invalid { background: #9a6700; } .v-tampered { background: #8250df; } .v-interrupted { background: #d4a72c; }
.v-running, .v-proposing { background: #0969da; }
tr.diverged td { background: #ffebe9; }
`;
