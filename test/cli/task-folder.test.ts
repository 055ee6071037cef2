import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { quadraticTask, runCli, tempDir } from "../helpers.js";
import { COMMANDS, resultsTsv } from "./commands.js";

describe("a task folder that is not there", () => {
  it("is refused by every command that takes -C, naming it and creating nothing", async () => {
    const parent = tempDir();
    const missing = join(parent, "typo");
    const tsv = resultsTsv(tempDir());
    const said: [string, number | null, string][] = [];
    for (const args of COMMANDS(tsv)) {
      const result = await runCli([...args, "-C", missing], { timeoutMs: 20_000 });
      said.push([args[0]!, result.code, result.stderr]);
    }
    const refused = `autoresearch: the folder ${missing} does not exist: give -C the task's folder\n`;
    expect(said).toEqual(COMMANDS(tsv).map(([name]) => [name, 3, refused]));
    expect(readdirSync(parent)).toEqual([]);
  });
});

describe("an empty -C", () => {
  // `-C "$TASK"` with $TASK unset: resolve("") would be the folder the shell is in.
  it("is refused by every command that takes -C, creating nothing where it runs", async () => {
    const here = quadraticTask();
    const tsv = resultsTsv(tempDir());
    const said: [string, number | null, string][] = [];
    for (const args of COMMANDS(tsv)) {
      const result = await runCli([...args, "-C", ""], { cwd: here, timeoutMs: 20_000 });
      said.push([args[0]!, result.code, result.stderr]);
    }
    const refused = "autoresearch: -C needs a folder: give -C the task's folder\n";
    expect(said).toEqual(COMMANDS(tsv).map(([name]) => [name, 3, refused]));
    expect(existsSync(join(here, ".autoresearch"))).toBe(false);
  });

  it("is refused by init and demo as their folder too, writing nothing where they run", async () => {
    const here = tempDir();
    for (const args of [
      ["init", ""],
      ["demo", ""],
    ]) {
      const result = await runCli(args, { cwd: here, timeoutMs: 20_000 });
      expect([result.code, result.stderr]).toEqual([
        2,
        "autoresearch: the folder to write the task into is empty: name a folder, or leave it out\n",
      ]);
    }
    expect(readdirSync(here)).toEqual([]);
  });
});
