import { writeFileSync } from "node:fs";
import { join } from "node:path";

/** karpathy/autoresearch's results.tsv, as `import` reads it. */
export function resultsTsv(dir: string): string {
  const file = join(dir, "results.tsv");
  writeFileSync(
    file,
    "commit\tscore\tmemory_gb\tstatus\tdescription\nabc1234\t1.0\t0.0\tkeep\tbaseline\n",
  );
  return file;
}

/** Every command that takes -C, with what else it needs to get as far as the folder. */
export const COMMANDS = (tsv: string): string[][] => [
  ["status"],
  ["report"],
  ["serve", "--port", "0"],
  ["doctor"],
  ["resume"],
  ["run", "-n", "1"],
  ["try", "-m", "X 2"],
  ["import", tsv, "--tag", "imported"],
  ["delete", "--tag", "a"],
  ["promote"],
  ["noise"],
];

/** The commands that open the ledger of a task without stages. */
export const LEDGER_COMMANDS = (tsv: string): string[][] =>
  COMMANDS(tsv).filter(([name]) => name !== "promote" && name !== "noise");
