/**
 * A checkout left on the run's branch (as `try` leaves it) sees the keeps a later `resume`
 * makes, as after a checkout; edits of the person's that those keeps touch are left alone,
 * and the notice's commands put them on top.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { QUADRATIC_YAML, quadraticTask, runCli, sh } from "../helpers.js";

// Every proposal moves X a step toward 3: a keep each time.
const RESEARCH = `import { readFileSync, writeFileSync } from "node:fs";
const src = readFileSync("train.mjs", "utf8");
const x = Number(/const X = ([\\d.-]+);/.exec(src)[1]);
writeFileSync("train.mjs", src.replace(/const X = [\\d.-]+;/, "const X = " + (x + 0.25) + ";"));
console.log(JSON.stringify({ title: "X to " + (x + 0.25), hypothesis: "closer" }));
`;

function task(): string {
  const yaml = [
    ...QUADRATIC_YAML.map((l) =>
      l.startsWith("editable:") ? "editable: [train.mjs, notes.md]" : l,
    ),
    "judge: { policy: greedy }",
    "researcher: { kind: command, command: node research.mjs }",
  ].join("\n");
  return quadraticTask({ yaml, extra: { "research.mjs": RESEARCH, "notes.md": "notes\n" } });
}

const X = (root: string) =>
  /const X = ([\d.]+);/.exec(readFileSync(join(root, "train.mjs"), "utf8"))?.[1];

it("resume brings a checkout on the run's branch along with its keeps, and leaves edits it would overwrite", async () => {
  const root = task();
  const run = (...args: string[]) => runCli([...args, "-C", root, "--sandbox", "none"]);
  expect((await run("run", "--tag", "t", "--max-trials", "2")).code).toBe(0);
  sh(root, "git checkout -q autoresearch/t");
  expect(X(root)).toBe("1.25");

  // Clean, or with an edit of a file the keeps leave alone: brought along, the edit kept.
  writeFileSync(join(root, "notes.md"), "mine\n");
  const resumed = await run("resume", "--tag", "t", "--max-trials", "3");
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(sh(root, "git rev-parse HEAD")).toBe(sh(root, "git rev-parse autoresearch/t"));
  expect(X(root)).toBe("1.5");
  expect(sh(root, "git status --porcelain")).toBe("M notes.md");

  // An edit of train.mjs, which the next keep changes: left as it was, and said.
  sh(root, "git checkout -q -- notes.md && sed -i 's/^const Y = .*;/const Y = 0.25;/' train.mjs");
  const edited = await run("resume", "--tag", "t", "--max-trials", "4");
  expect(edited.code, edited.stderr).toBe(0);
  expect(readFileSync(join(root, "train.mjs"), "utf8")).toContain("const Y = 0.25;");
  const advice = /`(git update-ref --no-deref HEAD [^`]+)`/.exec(edited.stdout)?.[1];
  expect(edited.stdout).toContain("autoresearch/t, checked out here, moved to ");
  sh(root, `${advice} 2>&1`);
  expect(X(root)).toBe("1.75");
  expect(readFileSync(join(root, "train.mjs"), "utf8")).toContain("const Y = 0.25;");
  expect(sh(root, "git symbolic-ref HEAD")).toBe("refs/heads/autoresearch/t");
  expect(sh(root, "git status --porcelain")).toBe("M train.mjs");
});

it("a checkout a kill left behind the keeps is named by doctor and brought along by --fix and resume", async () => {
  const root = task();
  const run = (...args: string[]) => runCli([...args, "-C", root, "--sandbox", "none"]);
  expect((await run("run", "--tag", "t", "--max-trials", "4")).code).toBe(0);
  sh(root, "git checkout -q autoresearch/t");
  expect(X(root)).toBe("1.5");
  const tip = sh(root, "git rev-parse HEAD");
  const before = sh(root, "git rev-parse HEAD~1");
  const doctor = (...args: string[]) => runCli(["doctor", "-C", root, ...args]);

  // As `try` killed between its keep and refreshing the index: the files are the keep's,
  // the index the commit's before it.
  sh(root, `git read-tree ${before}`);
  expect(sh(root, "git status --porcelain")).toBe("MM train.mjs");
  const found = await doctor();
  expect(found.code).toBe(1);
  expect(found.stdout).toContain(
    `the task's checkout is on autoresearch/t, but its index holds the files of ${before.slice(0, 7)}, from before later keeps`,
  );
  const fixed = await doctor("--fix");
  expect(fixed.code, fixed.stdout).toBe(0);
  expect(sh(root, "git status --porcelain")).toBe("");
  expect(X(root)).toBe("1.5");

  // As a run killed after two keeps: index and files are two keeps back; an edit of a
  // file the keeps leave alone stays. resume brings it along before it goes on.
  sh(root, `git read-tree -m -u ${tip} HEAD~2`);
  expect(X(root)).toBe("1");
  writeFileSync(join(root, "notes.md"), "mine\n");
  expect((await doctor()).stdout).toContain("its index holds the files of");
  const resumed = await run("resume", "--tag", "t", "--max-trials", "5");
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(sh(root, "git status --porcelain")).toBe("M notes.md");
  expect(X(root)).toBe("1.75");
  expect(sh(root, "git rev-parse HEAD")).toBe(sh(root, "git rev-parse autoresearch/t"));

  // With an edit of train.mjs in the way, nothing moves, and doctor says how to settle it.
  sh(root, "git checkout -q -- notes.md");
  sh(
    root,
    `git read-tree -m -u HEAD HEAD~1 && sed -i 's/^const Y = .*;/const Y = 0.25;/' train.mjs`,
  );
  const stuck = await doctor("--fix");
  expect(stuck.code).toBe(1);
  const advice = /`(git update-ref --no-deref HEAD [^`]+)`/.exec(stuck.stdout)?.[1];
  expect(advice).toBeDefined();
  expect(readFileSync(join(root, "train.mjs"), "utf8")).toContain("const Y = 0.25;");
  sh(root, `${advice} 2>&1`);
  expect(X(root)).toBe("1.75");
  expect(readFileSync(join(root, "train.mjs"), "utf8")).toContain("const Y = 0.25;");
  expect(sh(root, "git status --porcelain")).toBe("M train.mjs");
  expect((await doctor()).code).toBe(0);
});
