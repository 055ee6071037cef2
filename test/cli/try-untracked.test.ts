import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { quadraticTask, runCli, sh } from "../helpers.js";

/** The user's own files beside the task: new and not editable, or ignored by git. */
const USER_FILES: Record<string, string> = {
  "notes.txt": "scratch\n",
  "mydata/a.csv": "x,score\n1,4.5\n",
  "debug.log": "ignored by .gitignore\n",
  "cache/blob.bin": "ignored folder\n",
};

function task(): string {
  const root = quadraticTask({
    yaml: [
      "name: quadratic",
      'editable: [train.mjs, "lib/**"]',
      "protected: [evaluate.mjs]",
      "run: node train.mjs",
      "budget: 5s",
      "timeout: 20s",
      "kill_grace: 1s",
      "metric: { name: score, goal: minimize }",
    ].join("\n"),
    extra: { ".gitignore": "*.log\ncache/\n" },
  });
  for (const [path, content] of Object.entries(USER_FILES)) write(root, path, content);
  return root;
}

function write(root: string, path: string, content: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), content);
}

const setX = (root: string, x: number) =>
  sh(root, `sed -i 's/^const X = .*;/const X = ${x};/' train.mjs`);

function expectUserFilesIntact(root: string): void {
  for (const [path, content] of Object.entries(USER_FILES))
    expect(readFileSync(join(root, path), "utf8"), path).toBe(content);
  expect(sh(root, "git status --porcelain")).toBe("?? mydata/\n?? notes.txt");
}

/** Absolute paths in the output (not refs or branch names, whose slashes follow a word). */
function printedPaths(stdout: string): string[] {
  return stdout.match(/(?<![\w.])\/[^\s`'"(),]+/g) ?? [];
}

describe("autoresearch try beside the user's own files", () => {
  it("tries the edit, leaves new files that are not editable and ignored files where they are, keep or discard", async () => {
    const root = task();
    setX(root, 3);
    const kept = await runCli(["try", "-C", root, "--tag", "u", "-m", "X 1 → 3"]);
    expect(kept.stderr).toBe("");
    expect(kept.stdout).toContain("trial 1: keep\nscore 0.5 (incumbent 4.5)\n");
    expect(kept.stdout).toContain(
      "left alone, not part of the trial (new files that are not editable): mydata/a.csv, notes.txt",
    );
    expectUserFilesIntact(root);
    expect(sh(root, "git show HEAD:train.mjs")).toContain("const X = 3;");
    expect(sh(root, "git ls-tree -r --name-only refs/autoresearch/u/trials/1")).not.toMatch(
      /notes|mydata|\.log|cache/,
    );

    // A new file matching an editable glob is part of the change, reverted with it.
    setX(root, 5);
    write(root, "lib/helper.mjs", "export const h = 1;\n");
    const discarded = await runCli(["try", "-C", root, "-m", "X 3 → 5"]);
    expect(discarded.stdout).toContain("trial 2: discard\nscore 4.5 (incumbent 0.5)\n");
    expect(discarded.stdout).toContain("reason: score 4.5 does not beat its parent's 0.5");
    expect(discarded.stdout).toContain(
      "your change was reverted; it is saved under refs/autoresearch/u/trials/2",
    );
    expect(existsSync(join(root, "lib/helper.mjs"))).toBe(false);
    expect(sh(root, "git show refs/autoresearch/u/trials/2:lib/helper.mjs")).toContain("h = 1");
    expect(readFileSync(join(root, "train.mjs"), "utf8")).toContain("const X = 3;");
    expectUserFilesIntact(root);
    for (const path of printedPaths(kept.stdout + discarded.stdout))
      expect(existsSync(path), path).toBe(true);
  });

  it("names no log for a trial refused before it ran; every path it prints exists", async () => {
    const root = task();
    setX(root, 2.9);
    writeFileSync(join(root, "evaluate.mjs"), "export const score = () => -100;\n");
    const invalid = await runCli(["try", "-C", root, "--tag", "v", "-m", "cheat"]);
    expect(invalid.stdout).toContain("trial 1: invalid\n");
    expect(invalid.stdout).toContain("reason: changes not allowed: evaluate.mjs (protected)\n");
    expect(invalid.stdout).not.toContain("log:");
    for (const path of printedPaths(invalid.stdout)) expect(existsSync(path), path).toBe(true);
    expect(readFileSync(join(root, "evaluate.mjs"), "utf8")).toContain("(x - 3) ** 2");
    expectUserFilesIntact(root);

    setX(root, 2.9);
    writeFileSync(join(root, "evaluate.mjs"), "export const score = () => -100;\n");
    const json = JSON.parse((await runCli(["try", "-C", root, "-m", "cheat", "--json"])).stdout);
    expect(json).toMatchObject({ trial: 2, verdict: "invalid", log: null });
  });

  it("leaves a change that could not be committed in the working copy, its only copy", async () => {
    const root = task();
    setX(root, 3);
    write(root, "lib/key.mjs", "export const key = 'sk-try-test-0123456789';\n");
    const refused = await runCli(["try", "-C", root, "--tag", "k", "-m", "with a key"], {
      env: { TRY_TEST_API_KEY: "sk-try-test-0123456789" },
    });
    expect(refused.stdout).toContain("trial 1: invalid\n");
    expect(refused.stdout).toContain("reason: not committed: lib/key.mjs (holds the value of");
    expect(refused.stdout).toContain(
      "the working copy is as you left it (the change was not committed): fix what the reason says and try again",
    );
    expect(readFileSync(join(root, "lib/key.mjs"), "utf8")).toContain("sk-try-test");
    expect(readFileSync(join(root, "train.mjs"), "utf8")).toContain("const X = 3;");
    for (const [path, content] of Object.entries(USER_FILES))
      expect(readFileSync(join(root, path), "utf8"), path).toBe(content);
  });

  it("prints the verdict and the metric by name, none of the loop's talk of --max-trials", async () => {
    const root = task();
    setX(root, 6);
    const shown = await runCli(["try", "-C", root, "--tag", "w", "-m", "X 1 → 6"]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain("#0 baseline: keep, score 4.5\n");
    expect(shown.stdout).toContain("trial 1: discard\nscore 9.5 (incumbent 4.5)\n");
    expect(shown.stdout).not.toMatch(/\bmetric\b/);
    expect(shown.stdout).not.toContain("--max-trials");
    expect((await runCli(["status", "-C", root])).stdout).not.toContain("--max-trials");

    setX(root, 3);
    const json = await runCli(["try", "-C", root, "-m", "X 1 → 3", "--json"]);
    expect(json.stdout.trim().split("\n")).toHaveLength(1);
    const answer = JSON.parse(json.stdout);
    expect(Object.keys(answer).sort()).toEqual(
      [
        "run",
        "trial",
        "verdict",
        "metric_name",
        "metric",
        "incumbent_metric",
        "reason",
        "kept",
        "incumbent",
        "log",
        "notes",
      ].sort(),
    );
    expect(answer).toMatchObject({ run: "w", trial: 2, verdict: "keep", metric_name: "score" });
    expect(answer.notes).toEqual([]);
    expect(existsSync(answer.log)).toBe(true);
  });

  it("says nothing is tried when the only new files are not editable, and leaves them", async () => {
    const root = task();
    const nothing = await runCli(["try", "-C", root, "-m", "notes"]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain(
      "nothing to try: the working copy has no changes against HEAD besides new files that are not editable, never part of a trial (mydata/a.csv, notes.txt); edit the editable files first",
    );
    expectUserFilesIntact(root);
  });
});
