import type { Command } from "commander";
import { writeReport } from "../report/write.js";
import { taskRoot } from "./common.js";

export function registerReport(program: Command): void {
  program
    .command("report")
    .description("write a run's progress chart (PNG, SVG) and a self-contained HTML report")
    .option("-C, --dir <path>", "the task's folder")
    .option("-t, --tag <tag>", "the run (default: the most recent one)")
    .option("-o, --out <dir>", "where to write (default: .autoresearch/runs/<tag>/)")
    .action(async (o) => {
      const { files } = await writeReport({ root: taskRoot(o.dir), tag: o.tag, out: o.out });
      process.stdout.write(`report: ${files.html}\nchart:  ${files.png}\n        ${files.svg}\n`);
    });
}
