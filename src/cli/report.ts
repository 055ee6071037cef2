import type { Command } from "commander";
import { writeReport } from "../report/write.js";
import { checkTaskFolder } from "../task/load.js";
import { taskRoot } from "./common.js";

export function registerReport(program: Command): void {
  program
    .command("report")
    .description("write a run's progress chart (PNG, SVG) and a self-contained HTML report")
    .option("-C, --dir <path>", "the task's folder")
    .option("-t, --tag <tag>", "the run (default: the most recent one)")
    .option("-o, --out <dir>", "where to write (default: .autoresearch/runs/<tag>/)")
    .action(async (o) => {
      const root = taskRoot(o.dir);
      // A mistyped -C is said as such, not as a task without runs.
      checkTaskFolder(root);
      const { files } = await writeReport({ root, tag: o.tag, out: o.out });
      process.stdout.write(`report: ${files.html}\nchart:  ${files.png}\n        ${files.svg}\n`);
    });
}
