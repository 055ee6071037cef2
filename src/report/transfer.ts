import { changeName, type TransferTable } from "../ledger/promotions.js";

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
    const transfers = r.transfers === null ? "not isolable" : r.transfers ? "yes" : "NO";
    lines.push(
      `  ${changeName(r).padEnd(width)} ${signed(r.found).padStart(10)} ${signed(r.atStage).padStart(12)}  ${transfers.padEnd(12)}  ${r.title}`,
    );
  }
  const isolated = t.rows.filter((r) => r.atStage !== null).length;
  const verdict =
    t.additive !== null
      ? t.additive
        ? "additive within noise"
        : "not additive: the changes interact"
      : isolated < t.rows.length
        ? "additivity unknown: a change could not be taken out on its own"
        : "additivity unknown";
  lines.push(`  stacked ${signed(t.stacked)}, single effects summed ${signed(t.sum)}: ${verdict}`);
  if (t.test && t.test.tolerance === null)
    lines.push("  (no spread of one evaluation is known: give the stage two seeds or more)");
  else if (t.test)
    lines.push(
      `  (test: |stacked − summed| ≤ ${t.test.tolerance === null ? "—" : Number(t.test.tolerance.toPrecision(3))}, two standard errors from a spread of ${fmtMetric(t.test.spread)} per evaluation, ${t.test.from})`,
    );
  return lines.join("\n");
}
