import { type Command, Option } from "commander";
import { importResults } from "../report/import.js";
import { checkTaskFolder } from "../task/load.js";
import { taskRoot } from "./common.js";

export function registerImport(program: Command): void {
  program
    .command("import")
    .summary("record a karpathy/autoresearch results.tsv as a run named by --tag")
    .description(
      "record a karpathy/autoresearch results.tsv (one row per experiment, the first the baseline) as a finished run named by --tag, so that report, status and serve show it",
    )
    .argument("<results.tsv>", "commit, <metric>, memory_gb, status, description; tab-separated")
    // Commander's help does not mark required options; the description must.
    .requiredOption("-t, --tag <tag>", "required: the name to give the imported run, e.g. mar5")
    .option("-C, --dir <path>", "the folder to hold .autoresearch/ (need not be a task)")
    .addOption(
      new Option("--goal <goal>", "whether the metric is better low or high")
        .choices(["minimize", "maximize"])
        .default("minimize"),
    )
    .action(async (file: string, o) => {
      const root = taskRoot(o.dir);
      // A mistyped -C would otherwise become a new folder holding the imported run.
      checkTaskFolder(root);
      const run = await importResults({ root, file, tag: o.tag, goal: o.goal });
      process.stdout.write(
        `imported run ${run.tag} into ${root}/.autoresearch/ledger.db\nnext: autoresearch report --tag ${run.tag}${o.dir ? ` -C ${o.dir}` : ""}\n`,
      );
    });
}
