import type { Command } from "commander";
import { initTask, templateNames } from "../task/init.js";

export function registerInit(program: Command): void {
  program
    .command("init")
    .description("write a ready task from a template into DIR, as a new git repository")
    .argument("[dir]", "where to write the task", ".")
    .option("--template <name>", `one of: ${templateNames().join(", ")}`, "demo")
    .action(async (dir: string, o) => {
      const root = await initTask(o.template, dir);
      process.stdout.write(
        `wrote the ${o.template} task to ${root}\nnext: cd ${root} && autoresearch run --max-trials 10\n`,
      );
    });
}
