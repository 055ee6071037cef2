import { cpSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "../errors.js";
import { git } from "../workspace/git.js";

/** The templates folder of the package, beside src/ and dist/. */
export const TEMPLATES_DIR = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "templates",
);

export function templateNames(): string[] {
  return readdirSync(TEMPLATES_DIR, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

const SKIPPED = new Set(["__pycache__", "node_modules", ".autoresearch", ".git"]);

/** Writes a ready task from a template into `dir` as a new git repository with one commit. */
export async function initTask(template: string, dir: string): Promise<string> {
  const names = templateNames();
  if (!names.includes(template))
    throw new UsageError(`--template: no template "${template}"; available: ${names.join(", ")}`);
  // An empty argument (an unset variable, say) is a mistake, not the current folder.
  if (dir === "")
    throw new UsageError(
      "the folder to write the task into is empty: name a folder, or leave it out",
    );
  const target = resolve(dir);
  if (existsSync(target) && readdirSync(target).length > 0)
    throw new UsageError(`${target} exists and is not empty; give a new or empty folder`);
  mkdirSync(target, { recursive: true });
  cpSync(join(TEMPLATES_DIR, template), target, {
    recursive: true,
    filter: (source) => !SKIPPED.has(source.split("/").at(-1) ?? ""),
  });
  await git(target, ["-c", "init.defaultBranch=main", "init", "--quiet"]);
  await git(target, ["add", "--all"]);
  const identity = await git(target, ["config", "--get", "user.email"]).catch(() => "");
  await git(
    target,
    ["commit", "--quiet", "--no-verify", "-m", `Task from the ${template} template`],
    {
      harness: identity === "",
    },
  );
  return target;
}
