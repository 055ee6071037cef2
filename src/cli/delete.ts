import type { Command } from "commander";
import { deleteRun } from "../orchestrator/index.js";
import { taskRoot } from "./common.js";

export function registerDelete(program: Command): void {
  program
    .command("delete")
    .description("delete a run: its records, trial refs, branch and files (asks for --yes)")
    .option("-C, --dir <path>", "the task's folder")
    .requiredOption("-t, --tag <tag>", "the run to delete")
    .option("--yes", "delete; without it, only say what would go")
    .action(async (o) => {
      const d = await deleteRun({ root: taskRoot(o.dir), tag: o.tag, yes: o.yes === true });
      const list = d.items.map((i) => `  ${i}`).join("\n");
      process.stdout.write(
        d.deleted
          ? `deleted run ${d.tag}:\n${list}\n`
          : `run ${d.tag} would lose:\n${list}\nnothing was deleted: run again with --yes to delete it\n`,
      );
    });
}
