import { changeName, type TransferRow, type TransferTable } from "../ledger/promotions.js";

const fmtMetric = (x: number | null) => (x === null ? "—" : Number(x.toPrecision(6)).toString());
const signed = (x: number | null) =>
  x === null ? "—" : `${x >= 0 ? "+" : ""}${Number(x.toPrecision(4))}`;

/** The transfer table as text: each kept change where found and at the larger stage. */
export function formatTransfer(t: TransferTable): string {
  const metric = t.metric;
  const width = Math.max(5, ...t.rows.map((r) => changeName(r).length));
  const lines = [
    `transfer to stage ${t.stage} (${t.seeds} seed${t.seeds === 1 ? "" : "s"} each): ${metric} baseline ${fmtMetric(t.baseline)} → incumbent ${fmtMetric(t.incumbent)}, improvement ${signed(t.stacked)}`,
    `  ${"trial".padEnd(width)} ${"found".padStart(10)} ${`at ${t.stage}`.padStart(12)}  ${"transfers".padEnd(12)}  change`,
  ];
  for (const r of t.rows) {
    lines.push(
      `  ${changeName(r).padEnd(width)} ${signed(r.found).padStart(10)} ${signed(r.atStage).padStart(12)}  ${transfers(r).padEnd(12)}  ${r.title}`,
    );
  }
  lines.push(
    `  stacked ${signed(t.stacked)}, single effects summed ${signed(t.sum)}: ${additivity(t)}`,
  );
  const test = additivityTest(t);
  if (test) lines.push(`  (${test})`);
  return lines.join("\n");
}

/** A row's verdict at the larger stage, in words. */
export function transfers(r: TransferRow): string {
  if (r.transfers !== null) return r.transfers ? "yes" : "NO";
  return r.isolable === true ? "no value" : "not isolable";
}

/** Whether the single effects add up to the stacked one, and why not when unknown. */
export function additivity(t: TransferTable): string {
  if (t.rows.length === 1) return "one change: nothing to add up";
  if (t.additive !== null)
    return t.additive ? "additive within noise" : "not additive: the changes interact";
  if (t.rows.some((r) => r.atStage === null && r.isolable !== true))
    return "additivity unknown: a change could not be taken out on its own";
  if (t.rows.some((r) => r.atStage === null))
    return "additivity unknown: an evaluation gave no value (see the promotion's logs)";
  return "additivity unknown";
}

/** How additivity was tested, or why it could not be; null before any test or with one change. */
export function additivityTest(t: TransferTable): string | null {
  if (!t.test || t.rows.length === 1) return null;
  if (t.test.tolerance === null)
    return "no spread of one evaluation is known: give the stage two seeds or more";
  return `test: |stacked − summed| ≤ ${Number(t.test.tolerance.toPrecision(3))}, two standard errors from a spread of ${fmtMetric(t.test.spread)} per evaluation, ${t.test.from}`;
}
