/**
 * A checkout left on the run's branch (as `try` leaves it) sees the keeps a later `resume`
 * makes, as after a checkout; edits of the person's that those keeps touch are left alone,
 * and the notice's commands put them on top.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import {
  QUADRATIC_YAML,
  quadraticTask,
  ROOT,
  runCli,
  sh,
  startCli,
  tempDir,
  waitFor,
} from "../helpers.js";

// Every proposal moves X a step toward 3: a keep each time.
const RESEARCH = `import { existsSync, readFileSync, writeFileSync } from "node:fs";
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
  expect(edited.stdout).toContain(
    "your changes to train.mjs, which the keeps changed too, are in the way; it was left as it is",
  );
  sh(root, `${advice} 2>&1`);
  expect(X(root)).toBe("1.75");
  expect(readFileSync(join(root, "train.mjs"), "utf8")).toContain("const Y = 0.25;");
  expect(sh(root, "git symbolic-ref HEAD")).toBe("refs/heads/autoresearch/t");
  expect(sh(root, "git status --porcelain")).toBe("M train.mjs");
});

// As RESEARCH, but once X would pass $STALL_AT it says so in a file and waits to be killed.
const STALLING = RESEARCH.replace(
  'writeFileSync("train.mjs"',
  `if (x + 0.25 > Number(process.env.STALL_AT ?? Infinity)) {
  writeFileSync(process.env.STALL_FILE, String(process.pid));
  await new Promise((r) => setTimeout(r, 60_000));
}
writeFileSync("train.mjs"`,
);

/** What a killed session or `try` leaves in its record (a process long gone, begun now). */
function mark(root: string, from: string): string {
  const file = join(root, ".autoresearch", "runs", "t", "checkout-from");
  writeFileSync(file, JSON.stringify({ from, at: Date.now(), pid: 4194303, start: null }));
  return file;
}

/**
 * What a `try` killed between moving the branch and the index leaves: the keep's files, the
 * index of the commit before as it stood, and its record.
 */
function killedTry(root: string, before: string): string {
  sh(root, `git read-tree -m -u HEAD ${before} && git show HEAD:train.mjs > train.mjs`);
  return mark(root, before);
}

it("a checkout a kill left behind the keeps is named by doctor and brought along by resume; a try meanwhile leaves it to the live run", async () => {
  const root = task();
  writeFileSync(join(root, "research.mjs"), STALLING);
  sh(root, "git commit -qam stalling");
  const run = (...args: string[]) => runCli([...args, "-C", root, "--sandbox", "none"]);
  const doctor = (...args: string[]) => runCli(["doctor", "-C", root, ...args]);
  expect((await run("run", "--tag", "t", "--max-trials", "1")).code).toBe(0);
  sh(root, "git checkout -q autoresearch/t");
  const base = sh(root, "git rev-parse HEAD");
  const record = join(root, ".autoresearch", "runs", "t", "checkout-from");

  // A session killed after two keeps, before it brought the checkout along.
  const stall = join(tempDir(), "stalled");
  const child = startCli(
    ["resume", "-C", root, "--tag", "t", "--max-trials", "9", "--sandbox", "none"],
    ROOT,
    { STALL_AT: "1.5", STALL_FILE: stall },
  );
  const research = Number(await waitFor(() => existsSync(stall) && readFileSync(stall, "utf8")));
  // While it runs, a try refuses before it touches the checkout or the run's record.
  writeFileSync(join(root, "notes.md"), "mine\n");
  const meanwhile = await run("try", "--title", "notes");
  expect(meanwhile.code).toBe(4);
  expect(meanwhile.stderr).toContain("is being driven by process");
  expect(existsSync(record)).toBe(true);
  expect(X(root)).toBe("1");
  child.kill("SIGKILL");
  process.kill(research, "SIGKILL");
  await new Promise((r) => child.once("close", r));
  expect(sh(root, "git status --porcelain")).toBe("M notes.md\nM  train.mjs");
  const found = await doctor();
  expect(found.code).toBe(1);
  expect(found.stdout).toContain(
    `the task's checkout is on autoresearch/t, but its index holds the files of ${base.slice(0, 7)} where later keeps changed them`,
  );
  expect(found.stdout).toContain("`autoresearch doctor --fix` brings it along");

  // The edit of a file the keeps leave alone stays; resume brings the rest along, and says so.
  const resumed = await run("resume", "--tag", "t", "--max-trials", "10");
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(resumed.stdout).toContain("the checkout on autoresearch/t was left at ");
  expect(sh(root, "git status --porcelain")).toBe("M notes.md");
  expect(Number(X(root)), resumed.stdout).toBeGreaterThan(1.5);
  expect(sh(root, "git rev-parse HEAD")).toBe(sh(root, "git rev-parse autoresearch/t"));
  expect(existsSync(record)).toBe(false);
  expect((await doctor()).code).toBe(0);
});

it("a staged edit of a file the keeps change is not run over: the session's end says so, and its advice works", async () => {
  const root = task();
  const run = (...args: string[]) => runCli([...args, "-C", root, "--sandbox", "none"]);
  expect((await run("run", "--tag", "t", "--max-trials", "1")).code).toBe(0);
  sh(root, "git checkout -q autoresearch/t");
  sh(root, "sed -i 's/^const Y = .*;/const Y = 0.25;/' train.mjs && git add train.mjs");
  const resumed = await run("resume", "--tag", "t", "--max-trials", "3");
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(resumed.stdout).toContain(
    "your changes to train.mjs, which the keeps changed too, are in the way",
  );
  const advice = /`(git update-ref --no-deref HEAD [^`]+)`/.exec(resumed.stdout)?.[1];
  expect(advice).toMatch(/ && git reset -q && git checkout -m autoresearch\/t$/);
  expect((await runCli(["doctor", "-C", root])).code).toBe(1);
  sh(root, `${advice} 2>&1`);
  expect(X(root)).toBe(
    /const X = ([\d.]+);/.exec(sh(root, "git show autoresearch/t:train.mjs"))?.[1],
  );
  expect(X(root)).not.toBe("1");
  expect(readFileSync(join(root, "train.mjs"), "utf8")).toContain("const Y = 0.25;");
  expect(sh(root, "git status --porcelain")).toBe("M train.mjs");
  expect((await runCli(["doctor", "-C", root])).code).toBe(0);
});

it("a revert staged in the index alone when a session starts is named at its end, and the advice says it would be lost", async () => {
  const root = task();
  const run = (...args: string[]) => runCli([...args, "-C", root, "--sandbox", "none"]);
  expect((await run("run", "--tag", "t", "--max-trials", "2")).code).toBe(0);
  sh(root, "git checkout -q autoresearch/t && git reset -q HEAD~1 -- train.mjs");
  const resumed = await run("resume", "--tag", "t", "--max-trials", "4");
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(resumed.stdout).toContain(
    "the staged versions of train.mjs differ from the files and would be lost: save them first",
  );
  expect(sh(root, "git diff --cached --name-only")).toBe("train.mjs");
});

it("a try killed between its keep and the index is brought along by --fix; work of the person's since is left, with a way that keeps it", async () => {
  const root = task();
  const run = (...args: string[]) => runCli([...args, "-C", root, "--sandbox", "none"]);
  const doctor = (...args: string[]) => runCli(["doctor", "-C", root, ...args]);
  expect((await run("run", "--tag", "t", "--max-trials", "4")).code).toBe(0);
  sh(root, "git checkout -q autoresearch/t");
  expect(X(root)).toBe("1.5");
  const before = sh(root, "git rev-parse HEAD~1");

  // What `try` leaves between moving the branch and the index: its record, the keep's files,
  // the index of the commit before.
  const record = killedTry(root, before);
  expect(sh(root, "git status --porcelain")).toBe("MM train.mjs");
  expect((await doctor()).stdout).toContain(`its index holds the files of ${before.slice(0, 7)}`);
  const fixed = await doctor("--fix");
  expect(fixed.code, fixed.stdout).toBe(0);
  expect(fixed.stdout).toContain("fixed checkout");
  expect(sh(root, "git status --porcelain")).toBe("");
  expect(X(root)).toBe("1.5");
  expect(existsSync(record)).toBe(false);

  // Index and files a keep back, then an edit of train.mjs: nothing moves, the problem is
  // not called fixed, and the advice puts the edit on top of the keep.
  sh(root, `git read-tree -m -u HEAD ${before}`);
  mark(root, before);
  sh(root, "sed -i 's/^const Y = .*;/const Y = 0.25;/' train.mjs");
  const stuck = await doctor("--fix");
  expect(stuck.code).toBe(1);
  expect(stuck.stdout).not.toContain("fixed checkout");
  const advice = /`(git update-ref --no-deref HEAD [^`]+)`/.exec(stuck.stdout)?.[1];
  expect(advice).toBe(`git update-ref --no-deref HEAD ${before} && git checkout -m autoresearch/t`);
  sh(root, `${advice} 2>&1`);
  expect(X(root)).toBe("1.5");
  expect(readFileSync(join(root, "train.mjs"), "utf8")).toContain("const Y = 0.25;");
  expect(sh(root, "git symbolic-ref HEAD")).toBe("refs/heads/autoresearch/t");
  expect(sh(root, "git status --porcelain")).toBe("M train.mjs");
  expect((await doctor()).code).toBe(0);

  // A record the person's own follow left, then a revert staged to where it points: the
  // file written since says it is the person's work, and nothing undoes it.
  sh(root, "git checkout -q -- train.mjs");
  const stale = mark(root, before);
  sh(root, "sleep 0.05");
  sh(root, `git checkout ${before} -- train.mjs`);
  const left = await doctor("--fix");
  expect(left.stdout).toContain("may be your own work");
  expect(left.stdout).not.toContain("fixed checkout");
  expect(X(root)).toBe("1.25");
  expect(sh(root, "git diff --cached --name-only")).toBe("train.mjs");
  // The same revert staged in the index alone (the file untouched): its entry says so.
  sh(root, "git reset -q --hard");
  mark(root, before);
  sh(root, `git reset -q ${before} -- train.mjs`);
  const staged = await doctor("--fix");
  expect(staged.stdout).not.toContain("fixed checkout");
  expect(staged.stdout).toContain("may be your own work (a revert you staged, say)");
  expect(sh(root, "git diff --cached --name-only")).toBe("train.mjs");
  expect(X(root)).toBe("1.5");
  // Once the checkout holds the keeps again, the record goes.
  sh(root, "git reset -q --hard");
  expect((await doctor()).code).toBe(0);
  expect(existsSync(stale)).toBe(false);

  // A damaged record is no record: dropped, and nothing fails over it.
  writeFileSync(stale, "-p\n");
  sh(root, `git read-tree ${before}`);
  expect((await doctor("--fix")).stdout).not.toContain("checkout");
  expect(existsSync(stale)).toBe(false);
  sh(root, "git reset -q");
});

it("a revert the person staged is never taken for a checkout left behind", async () => {
  const root = task();
  const run = (...args: string[]) => runCli([...args, "-C", root, "--sandbox", "none"]);
  const doctor = (...args: string[]) => runCli(["doctor", "-C", root, ...args]);
  expect((await run("run", "--tag", "t", "--max-trials", "2")).code).toBe(0);
  sh(root, "git checkout -q autoresearch/t");
  expect(X(root)).toBe("1.25");

  // With git's own marker, and without one (the files of the commit before, checked out).
  for (const revert of ["git revert --no-commit HEAD", "git checkout HEAD~1 -- train.mjs"]) {
    sh(root, revert);
    expect(X(root)).toBe("1");
    const found = await doctor("--fix");
    expect(found.stdout).not.toContain("checkout");
    expect(X(root)).toBe("1");
    expect(sh(root, "git diff --cached --name-only")).toBe("train.mjs");
    sh(root, "git revert --quit 2>/dev/null; git reset -q --hard");
  }
});

it("try brings a checkout a kill left behind along before it tries, and refuses, without `git reset`, when edits are in the way", async () => {
  const root = task();
  const run = (...args: string[]) => runCli([...args, "-C", root, "--sandbox", "none"]);
  expect((await run("run", "--tag", "t", "--max-trials", "2")).code).toBe(0);
  sh(root, "git checkout -q autoresearch/t");
  const before = sh(root, "git rev-parse HEAD~1");

  // As a killed try left it (the keep's files, the index before), then a new edit.
  killedTry(root, before);
  writeFileSync(join(root, "notes.md"), "mine\n");
  const tried = await run("try", "--title", "notes");
  expect(tried.code, tried.stderr).toBe(0);
  expect(tried.stdout).toContain("the checkout on autoresearch/t was left at ");
  expect(
    sh(root, "git diff --name-only refs/autoresearch/t/trials/2~1 refs/autoresearch/t/trials/2"),
  ).toBe("notes.md");
  expect(X(root)).toBe("1.25");

  // As a killed run left it (index and files a keep back), with an edit of train.mjs.
  sh(root, "git checkout -q -- . && git clean -qf");
  const tip = sh(root, "git rev-parse HEAD");
  const back = sh(root, "git rev-parse HEAD~1");
  sh(root, `git read-tree -m -u HEAD ${back}`);
  mark(root, back);
  sh(root, "sed -i 's/^const Y = .*;/const Y = 0.25;/' train.mjs");
  const refused = await run("try", "--title", "y");
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain(
    `git update-ref --no-deref HEAD ${back} && git checkout -m autoresearch/t`,
  );
  expect(refused.stderr).not.toContain("unstage them");
  expect(sh(root, "git rev-parse autoresearch/t")).toBe(tip);
  expect(readFileSync(join(root, "train.mjs"), "utf8")).toContain("const Y = 0.25;");

  // The advice followed where a keep changed the same line: the conflict is named, not tried.
  sh(root, `git checkout -q -- train.mjs && git read-tree -m -u HEAD ${back}`);
  mark(root, back);
  sh(root, "sed -i 's/^const X = .*;/const X = 2;/' train.mjs");
  const conflicting = await run("try", "--title", "x");
  const advice = /`(git update-ref --no-deref HEAD [^`]+)`/.exec(conflicting.stderr)?.[1];
  const merged = sh(root, `${advice} 2>&1 || true`);
  const settle = await run("try", "--title", "x");
  expect(settle.code, `${conflicting.stderr}\n${merged}`).toBe(2);
  expect(settle.stderr).toContain("train.mjs still has a conflict to settle");
});

it("a try killed mid-trial on a researcher's run is the person's to try again, not resume's to run", async () => {
  const root = task();
  const run = (...args: string[]) => runCli([...args, "-C", root, "--sandbox", "none"]);
  expect((await run("run", "--tag", "t", "--max-trials", "1")).code).toBe(0);
  sh(root, "git checkout -q autoresearch/t");
  writeFileSync(join(root, "notes.md"), "mine\n");
  const child = startCli(["try", "-C", root, "-m", "notes", "--sandbox", "none"], ROOT, {
    TEST_SLEEP_S: "30",
  });
  await waitFor(() =>
    existsSync(join(root, ".autoresearch", "runs", "t", "trials", "1", "run.log")),
  );
  child.kill("SIGKILL");
  await new Promise((r) => child.once("close", r));
  const resumed = await run("resume", "--tag", "t", "--max-trials", "3");
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(resumed.stdout).not.toMatch(/[1-9]\d* trial\(s\) continued/);
  const status = await runCli(["status", "-C", root, "--trials", "5"]);
  expect(status.stdout).toMatch(/#1\s+interrupted/);
  expect(readFileSync(join(root, "notes.md"), "utf8")).toBe("mine\n");
});

it("a branch checked out while its run goes is brought along at the run's end", async () => {
  const root = task();
  const base = sh(root, "git rev-parse HEAD");
  const child = startCli(
    ["run", "-C", root, "--tag", "t", "--max-trials", "5", "--sandbox", "none"],
    ROOT,
    { TEST_SLEEP_S: "0.5" },
  );
  // After the first keep, with more to come.
  await waitFor(() => {
    const tip = sh(root, "git rev-parse --verify -q autoresearch/t || true");
    return tip && tip !== base;
  });
  sh(root, "git checkout -q autoresearch/t");
  await new Promise((r) => child.once("close", r));
  expect(sh(root, "git status --porcelain"), child.out).toBe("");
  expect(X(root)).toBe(
    /const X = ([\d.]+);/.exec(sh(root, "git show autoresearch/t:train.mjs"))?.[1],
  );
});

it("files a kill left behind, their index unstaged by the person, are named and brought along", async () => {
  const root = task();
  const run = (...args: string[]) => runCli([...args, "-C", root, "--sandbox", "none"]);
  const doctor = (...args: string[]) => runCli(["doctor", "-C", root, ...args]);
  expect((await run("run", "--tag", "t", "--max-trials", "2")).code).toBe(0);
  sh(root, "git checkout -q autoresearch/t");
  const before = sh(root, "git rev-parse HEAD~1");
  sh(root, `git read-tree -m -u HEAD ${before}`);
  mark(root, before);
  // What `git status` showed staged, unstaged: now the files alone look like a revert.
  sh(root, "git reset -q");
  expect(sh(root, "git status --porcelain")).toBe("M train.mjs");
  const found = await doctor();
  expect(found.stdout).toContain("but train.mjs still holds its version of");
  const fixed = await doctor("--fix");
  expect(fixed.code, fixed.stdout).toBe(0);
  expect(sh(root, "git status --porcelain")).toBe("");
  expect(X(root)).toBe("1.25");
});
