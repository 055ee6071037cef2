import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { QUADRATIC_YAML, quadraticTask, runCli, sh, tempDir } from "../helpers.js";

describe("autoresearch try, from a plain shell session", () => {
  it("keeps or reverts the working copy's change, leaving it on the incumbent, and records every trial", async () => {
    const root = quadraticTask();
    const setX = (x: number) => sh(root, `sed -i 's/^const X = .*;/const X = ${x};/' train.mjs`);

    setX(3);
    const kept = await runCli([
      "try",
      "-C",
      root,
      "--tag",
      "agent1",
      "-m",
      "X 1 → 3",
      "--hypothesis",
      "the minimum is at 3",
      "--sandbox",
      "none",
    ]);
    expect(kept.stderr).toBe("");
    expect(kept.code).toBe(0);
    expect(kept.stdout).toContain("trial 1: keep\nscore 0.5 (incumbent 4.5)");
    expect(kept.stdout).toContain(
      "the working copy is on the incumbent: autoresearch/agent1 (score 0.5)",
    );
    expect(sh(root, "git status --porcelain")).toBe("");
    expect(sh(root, "git rev-parse --abbrev-ref HEAD")).toBe("autoresearch/agent1");
    expect(sh(root, "git show HEAD:train.mjs")).toContain("const X = 3;");

    setX(5);
    const discarded = await runCli(["try", "-C", root, "-m", "X 3 → 5", "--json"]);
    expect(discarded.code).toBe(0);
    const answer = JSON.parse(discarded.stdout);
    expect(answer).toMatchObject({
      run: "agent1",
      trial: 2,
      verdict: "discard",
      metric: 4.5,
      incumbent_metric: 0.5,
      kept: false,
      incumbent: { trial: 1, metric: 0.5 },
    });
    expect(sh(root, "git status --porcelain")).toBe("");
    expect(readFileSync(join(root, "train.mjs"), "utf8")).toContain("const X = 3;");
    expect(sh(root, "git show refs/autoresearch/agent1/trials/2:train.mjs")).toContain(
      "const X = 5;",
    );

    // Touching the evaluation is refused: recorded as invalid, everything tried reverted;
    // a new file that is not editable is not part of the trial and stays.
    setX(2.9);
    writeFileSync(join(root, "evaluate.mjs"), "export const score = () => -100;\n");
    writeFileSync(join(root, "notes.txt"), "scratch\n");
    const invalid = await runCli(["try", "-C", root, "-m", "cheat"]);
    expect(invalid.stdout).toContain("trial 3: invalid");
    // The run goes on with the --sandbox its first try gave.
    expect(invalid.stdout).toContain("sandbox: none (the run's --sandbox none)\n");
    expect(invalid.stdout).toContain("reason: changes not allowed: evaluate.mjs (protected)\n");
    expect(sh(root, "git status --porcelain")).toBe("?? notes.txt");
    expect(readFileSync(join(root, "evaluate.mjs"), "utf8")).toContain("(x - 3) ** 2");
    expect(readFileSync(join(root, "notes.txt"), "utf8")).toBe("scratch\n");

    const ledger = Ledger.open(root);
    const trials = ledger.trials(ledger.run("agent1")!.id);
    expect(ledger.run("agent1")!.sandbox).toBe("none");
    ledger.close();
    expect(trials.map((t) => [t.n, t.verdict, t.researcher, t.title])).toEqual([
      [0, "keep", "baseline", "baseline"],
      [1, "keep", "agent", "X 1 → 3"],
      [2, "discard", "agent", "X 3 → 5"],
      [3, "invalid", "agent", "cheat"],
    ]);
  });

  it("says when there is nothing to try, and when the checkout is not on the incumbent", async () => {
    const root = quadraticTask();
    const nothing = await runCli(["try", "-C", root, "-m", "x"]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain(
      "nothing to try: the working copy has no changes against HEAD",
    );
    sh(root, "sed -i 's/^const X = .*;/const X = 2;/' train.mjs");
    expect((await runCli(["try", "-C", root, "--tag", "t", "-m", "X 2"])).code).toBe(0);
    sh(root, "git checkout -q main && sed -i 's/^const Y = .*;/const Y = 0;/' train.mjs");
    const elsewhere = await runCli(["try", "-C", root, "--tag", "t", "-m", "Y 0"]);
    expect(elsewhere.code).toBe(2);
    const advice = /the checkout is at \w+ but the incumbent of run "t" is \w+; run `([^`]+)`/.exec(
      elsewhere.stderr,
    );
    expect(advice?.[1]).toBe("git stash && git checkout autoresearch/t && git stash pop");
    // What it says works, though the incumbent changed the same file: the edit comes along.
    sh(root, `${advice![1]} 2>/dev/null`);
    const after = await runCli(["try", "-C", root, "--tag", "t", "-m", "Y 0"]);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toContain("trial 2: keep");
  });

  it("off the incumbent, says when the stash's pop will conflict, and the edits outlive the conflict", async () => {
    const root = quadraticTask({
      yaml: QUADRATIC_YAML.map((l) =>
        l.startsWith("editable:") ? "editable: [train.mjs, extra.mjs]" : l,
      ).join("\n"),
    });
    const tryIt = (title: string) => runCli(["try", "-C", root, "--tag", "t", "-m", title]);
    const advice = (stderr: string) => /run `([^`]+)`/.exec(stderr)?.[1];
    // The incumbent drops the line between X and Y: an edit of Y now touches its change.
    sh(root, "sed -i -e 's/^const X = .*;/const X = 2;/' -e '/^\\/\\/ Y is/d' train.mjs");
    expect((await tryIt("X 2")).code).toBe(0);

    // Only a new file: nothing to stash, so no pop that would take out an older stash.
    sh(root, "git checkout -q main");
    writeFileSync(join(root, "extra.mjs"), "export const extra = 1;\n");
    const newFile = await tryIt("extra");
    expect(newFile.code).toBe(2);
    expect(advice(newFile.stderr)).toBe("git checkout autoresearch/t");
    sh(root, "rm extra.mjs");

    sh(root, "sed -i 's/^const Y = .*;/const Y = 0;/' train.mjs");
    const conflict = await tryIt("Y 0");
    expect(conflict.code).toBe(2);
    expect(conflict.stderr).toMatch(
      /the incumbent of run "t" is \w+, whose changes conflict with your edits in train\.mjs: run `git stash && git checkout autoresearch\/t && git stash pop`; the pop will stop on the conflict, keeping your edits in the stash: resolve the conflict markers in train\.mjs, then `git reset && git stash drop`, and try again\n$/,
    );
    // As it says: the pop stops, the edit is kept in the stash and marked in the file.
    sh(root, `{ ${advice(conflict.stderr)}; } >/dev/null 2>&1 || true`);
    expect(sh(root, "git stash list")).toMatch(/^stash@\{0\}: [^\n]+$/);
    expect(sh(root, "git show stash@{0}:train.mjs")).toContain("const Y = 0;");
    expect(readFileSync(join(root, "train.mjs"), "utf8")).toContain("<<<<<<<");
    sh(
      root,
      "git show autoresearch/t:train.mjs | sed 's/^const Y = .*;/const Y = 0;/' > train.mjs",
    );
    sh(root, "git reset -q && git stash drop -q");
    const resolved = await tryIt("Y 0");
    expect(resolved.code, resolved.stderr).toBe(0);
    expect(resolved.stdout).toContain("trial 2: keep");

    // A checkout that is not behind the incumbent: the pop's base is not one merge-tree takes.
    sh(
      root,
      "git checkout -q main && git -c user.name=t -c user.email=t@t commit -q --allow-empty -m note",
    );
    sh(root, "sed -i 's/^const X = .*;/const X = 3;/' train.mjs");
    const diverged = await tryIt("X 3");
    expect(diverged.code).toBe(2);
    expect(diverged.stderr).toContain(
      "(your edits come along, onto the incumbent) and try again; should the pop stop on a conflict, your edits stay in the stash: settle each file `git status` lists as unmerged (resolve its conflict markers or, where one side deleted it, keep it with `git add` or drop it with `git rm`), then `git reset && git stash drop`, and try again",
    );
  });

  it("from a detached HEAD on a run's line, goes on with that run rather than start one", async () => {
    const root = quadraticTask();
    const tryIt = (...args: string[]) => runCli(["try", "-C", root, "-m", "edit", ...args]);
    sh(root, "sed -i 's/^const X = .*;/const X = 2;/' train.mjs");
    expect((await tryIt("--tag", "t")).code).toBe(0);
    sh(root, "sed -i 's/^const Y = .*;/const Y = 0;/' train.mjs");
    expect((await tryIt()).stdout).toContain("keep");
    // The first keep, checked out to look back, then edited.
    sh(
      root,
      "git checkout -q --detach HEAD~1 && sed -i 's/^const X = .*;/const X = 3;/' train.mjs",
    );
    const head = sh(root, "git rev-parse HEAD");
    const refused = await tryIt();
    expect(refused.code, refused.stdout).toBe(2);
    expect(refused.stderr).toMatch(
      /the checkout is at \w+ but the incumbent of run "t" is \w+; run `git stash && git checkout autoresearch\/t && git stash pop`/,
    );
    expect(sh(root, "git rev-parse HEAD")).toBe(head);
    expect(sh(root, "git branch --list 'autoresearch/*'")).toBe("autoresearch/t");

    // Back on main, on no run's branch: a new run starts, and says how to add to "t".
    sh(root, "git checkout -q main -- . && git checkout -q main");
    sh(root, "sed -i 's/^const Y = .*;/const Y = 0;/' train.mjs");
    const fresh = await tryIt();
    expect(fresh.code, fresh.stderr).toBe(0);
    const tag = /starting run (\S+)/.exec(fresh.stdout)?.[1];
    expect(fresh.stdout).toContain(
      `note: a new run "${tag}" starts from main at ${sh(root, "git rev-parse --short=7 main")}, since the checkout is on no run's branch; to add trials to run "t" instead, check out autoresearch/t before trying`,
    );
    // One asked for by its tag is not remarked on.
    sh(root, "git checkout -q main && sed -i 's/^const Y = .*;/const Y = 0;/' train.mjs");
    const named = await tryIt("--tag", "u");
    expect(named.code, named.stderr).toBe(0);
    expect(named.stdout).not.toContain("note:");
  });

  it("with --json, puts its notes in the answer, which is all it prints", async () => {
    const root = quadraticTask();
    const tryIt = (...args: string[]) => runCli(["try", "-C", root, "-m", "edit", ...args]);
    sh(root, "sed -i 's/^const X = .*;/const X = 2;/' train.mjs");
    expect((await tryIt("--tag", "t")).code).toBe(0);
    sh(root, "git checkout -q main && sed -i 's/^const Y = .*;/const Y = 0;/' train.mjs");
    const json = await tryIt("--json");
    expect(json.code, json.stderr).toBe(0);
    expect(json.stdout.trim().split("\n")).toHaveLength(1);
    const { run, notes } = JSON.parse(json.stdout);
    expect(notes).toEqual([
      `a new run "${run}" starts from main at ${sh(root, "git rev-parse --short=7 main")}, since the checkout is on no run's branch; to add trials to run "t" instead, check out autoresearch/t before trying`,
    ]);
  });

  it("off the incumbent, stashes new files the incumbent also added, ignored ones too, so no checkout overwrites them", async () => {
    const root = quadraticTask({
      yaml: QUADRATIC_YAML.map((l) =>
        l.startsWith("editable:") ? "editable: [train.mjs, extra.mjs, data.mjs]" : l,
      ).join("\n"),
    });
    const tryIt = (title: string) => runCli(["try", "-C", root, "--tag", "t", "-m", title]);
    const advice = (stderr: string) => /run `([^`]+)`/.exec(stderr)?.[1];
    const write = (file: string, n: number) =>
      writeFileSync(join(root, file), `export const v = ${n};\n`);
    sh(root, "sed -i 's/^const X = .*;/const X = 2;/' train.mjs");
    write("extra.mjs", 1);
    write("data.mjs", 1);
    expect((await tryIt("X 2, extra and data")).code).toBe(0);

    // An ignored new file at a path the incumbent adds: a checkout overwrites it unasked.
    sh(root, "git checkout -q main && echo data.mjs >> .git/info/exclude");
    write("data.mjs", 2);
    sh(root, "sed -i 's/^const Y = .*;/const Y = 0;/' train.mjs");
    const ignored = await tryIt("Y 0");
    expect(ignored.code).toBe(2);
    // Done as it says, the user's version outlives the move: in the stash, and marked.
    sh(root, `{ ${advice(ignored.stderr)}; } >/dev/null 2>&1 || true`);
    expect(sh(root, "git stash list")).toMatch(/^stash@\{0\}: [^\n]+$/);
    expect(sh(root, "git show stash@{0}:data.mjs")).toBe("export const v = 2;");
    expect(readFileSync(join(root, "data.mjs"), "utf8")).toMatch(
      /^<<<<<<< .*\nexport const v = 1;\n=======\nexport const v = 2;\n>>>>>>> /,
    );
    expect(readFileSync(join(root, "train.mjs"), "utf8")).toContain("const Y = 0;");
    expect(ignored.stderr).toMatch(
      /is \w+, whose changes conflict with your edits in data\.mjs: run `git add -f -- data\.mjs && git stash && git checkout autoresearch\/t && git stash pop`; the pop will stop on the conflict, keeping your edits in the stash: resolve the conflict markers in data\.mjs, then `git reset && git stash drop`, and try again\n$/,
    );
    write("data.mjs", 2);
    sh(root, "git reset -q && git stash drop -q");
    const resolved = await tryIt("Y 0");
    expect(resolved.code, resolved.stderr).toBe(0);
    expect(resolved.stdout).toContain("trial 2: keep");
    expect(sh(root, "git show HEAD:data.mjs")).toBe("export const v = 2;");

    // Only an untracked new file, the incumbent's too: a checkout would refuse it, so it is
    // staged and stashed, where a pop would otherwise take out an older stash.
    sh(root, "git checkout -q main");
    write("extra.mjs", 3);
    const untracked = await tryIt("extra 3");
    expect(untracked.code).toBe(2);
    sh(root, `{ ${advice(untracked.stderr)}; } >/dev/null 2>&1 || true`);
    expect(sh(root, "git rev-parse --abbrev-ref HEAD")).toBe("autoresearch/t");
    expect(sh(root, "git show stash@{0}:extra.mjs")).toBe("export const v = 3;");
    expect(readFileSync(join(root, "extra.mjs"), "utf8")).toContain(
      "=======\nexport const v = 3;\n>>>>>>>",
    );
    expect(advice(untracked.stderr)).toBe(
      "git add -f -- extra.mjs && git stash && git checkout autoresearch/t && git stash pop",
    );
  });

  it("off the incumbent, names an untracked folder in the way once, and will not stash a repository of the user's", async () => {
    const root = quadraticTask({
      yaml: QUADRATIC_YAML.map((l) =>
        l.startsWith("editable:") ? "editable: [train.mjs, out]" : l,
      ).join("\n"),
    });
    const tryIt = (title: string) => runCli(["try", "-C", root, "--tag", "t", "-m", title]);
    sh(root, "sed -i 's/^const X = .*;/const X = 2;/' train.mjs && echo 1 > out");
    expect((await tryIt("X 2 and out")).code).toBe(0);

    // The incumbent has the file `out`; the user, back on main, a folder of that name with
    // more files than one command line can name.
    sh(root, "git checkout -q main && rm -f out && mkdir out");
    sh(
      root,
      `cd out && seq -f "${"n".repeat(100)}%05g" 1 20000 | xargs touch && echo mine > notes`,
    );
    sh(root, "sed -i 's/^const Y = .*;/const Y = 0;/' train.mjs");
    const folder = await tryIt("Y 0");
    expect(folder.code, folder.stderr).toBe(2);
    const move = /run `([^`]+)`/.exec(folder.stderr)?.[1];
    expect(move).toBe(
      "git add -f -- out/ && git stash && git checkout autoresearch/t && git stash pop",
    );
    // The file the pop moves aside is named by its own path, not a commit's id.
    expect(folder.stderr).not.toMatch(/~[0-9a-f]{7}/);
    sh(root, `{ ${move}; } >/dev/null 2>&1 || true`);
    expect(sh(root, "git show stash@{0}:out/notes")).toBe("mine");
    expect(sh(root, "git ls-tree -r --name-only stash@{0} -- out | wc -l")).toBe("20001");

    // A repository of the user's own in the way: staged, it would become a link to its
    // commit and its files would stay behind, so nothing is advised but moving it.
    sh(root, "git reset -q --hard && git stash drop -q && git checkout -q main");
    sh(root, "rm -rf out && git init -q out && echo wip > out/wip.txt");
    sh(root, "sed -i 's/^const Y = .*;/const Y = 0;/' train.mjs");
    const before = sh(root, "git status --porcelain --ignored && git stash list");
    const nested = await tryIt("Y 0");
    expect(nested.code).toBe(2);
    expect(nested.stderr).toMatch(
      /which has files where out\/ is a git repository of your own: no stash carries it, and a checkout would refuse; move it out of this checkout first \(for example `mv -- out \.\.\/out\.aside`\), then try again\n$/,
    );
    expect(sh(root, "git status --porcelain --ignored && git stash list")).toBe(before);

    // Nor one deeper inside the folder in the way: it is named by its own path.
    sh(
      root,
      "rm -rf out && mkdir -p out/deep && git init -q out/deep && echo wip > out/deep/wip.txt",
    );
    sh(root, "echo mine > out/notes");
    const deeper = await tryIt("Y 0");
    expect(deeper.code).toBe(2);
    expect(deeper.stderr).toMatch(
      /which has files where out\/deep\/ is a git repository of your own: no stash carries it, and a checkout would refuse; move it out of this checkout first \(for example `mv -- out\/deep \.\.\/deep\.aside`\), then try again\n$/,
    );

    // A linked worktree there: moved by hand, its repository must be told where it went.
    sh(root, "rm -rf out && git worktree add -q -b side out main");
    const linked = await tryIt("Y 0");
    expect(linked.code).toBe(2);
    const aside = /for example `([^`]+)`/.exec(linked.stderr)?.[1];
    expect(aside).toBe("mv -- out ../out.aside && git -C ../out.aside worktree repair");
    // Followed, with a folder of the test's own in place of ../out.aside (shared /tmp).
    const away = join(tempDir(), "out.aside");
    sh(root, aside!.replaceAll("../out.aside", away));
    expect(sh(root, "git worktree list --porcelain")).toContain(`worktree ${away}\n`);
    expect(sh(root, "git worktree list --porcelain")).not.toMatch(/prunable/);
  });

  it("off the incumbent, names a file the incumbent renamed and the user deleted by both names", async () => {
    const root = quadraticTask({
      yaml: QUADRATIC_YAML.map((l) =>
        l.startsWith("editable:") ? "editable: [train.mjs, b.mjs, c.mjs]" : l,
      ).join("\n"),
      extra: { "b.mjs": "export const b = 1;\n" },
    });
    const tryIt = (title: string) => runCli(["try", "-C", root, "--tag", "t", "-m", title]);
    // The run starts from a commit that renames b.mjs; the user, back on main, deletes it.
    sh(root, "git checkout -q -b work && git mv b.mjs c.mjs");
    sh(root, "git -c user.name=t -c user.email=t@t commit -qm work");
    sh(root, "sed -i 's/^const X = .*;/const X = 2;/' train.mjs");
    expect((await tryIt("X 2")).code).toBe(0);
    sh(root, "git checkout -q main && rm b.mjs");
    const refused = await tryIt("no b");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /whose changes conflict with your edits in b\.mjs: run `git stash && git checkout autoresearch\/t && git stash pop`; the pop will stop on the conflict, keeping your edits in the stash: you deleted b\.mjs \(now c\.mjs\), which the incumbent renamed, and the pop leaves its version: keep it with `git add -- c\.mjs` or drop it with `git rm -q -- c\.mjs` \(a trial cannot delete a file: dropped, it is invalid\), then `git reset && git stash drop`, and try again\n$/,
    );
    // Done as it says: the pop stops there and leaves the incumbent's c.mjs.
    sh(
      root,
      "{ git stash && git checkout autoresearch/t && git stash pop; } >/dev/null 2>&1 || true",
    );
    expect(sh(root, "git status --porcelain -- c.mjs")).toBe("UD c.mjs");
    expect(readFileSync(join(root, "c.mjs"), "utf8")).toBe("export const b = 1;\n");
  });

  it("off the incumbent, says how to settle a file one side deleted, which gets no conflict markers", async () => {
    const root = quadraticTask({
      yaml: QUADRATIC_YAML.map((l) =>
        l.startsWith("editable:") ? "editable: [train.mjs, a.mjs, b.mjs]" : l,
      ).join("\n"),
      extra: { "a.mjs": "export const a = 1;\n", "b.mjs": "export const b = 1;\n" },
    });
    const tryIt = (title: string) => runCli(["try", "-C", root, "--tag", "t", "-m", title]);
    // The run starts from a commit that deletes a.mjs and changes b.mjs (a trial may delete
    // nothing); the user, back on main, does the opposite.
    sh(
      root,
      "git checkout -q -b work && git rm -q a.mjs && sed -i 's/1/2/' b.mjs && git -c user.name=t -c user.email=t@t commit -qam work",
    );
    sh(root, "sed -i 's/^const X = .*;/const X = 2;/' train.mjs");
    expect((await tryIt("X 2")).code).toBe(0);
    sh(root, "git checkout -q main && sed -i 's/1/3/' a.mjs && rm b.mjs");
    const refused = await tryIt("a 3, no b");
    expect(refused.code).toBe(2);
    expect(refused.stderr).not.toContain("markers");
    expect(refused.stderr).toMatch(
      /whose changes conflict with your edits in a\.mjs, b\.mjs: run `git stash && git checkout autoresearch\/t && git stash pop`; the pop will stop on the conflict, keeping your edits in the stash: the incumbent deleted a\.mjs, which you edited, and the pop leaves your version: keep it with `git add -- a\.mjs` or drop it with `git rm -q -- a\.mjs`; you deleted b\.mjs, which the incumbent changed, and the pop leaves its version: keep it with `git add -- b\.mjs` or drop it with `git rm -q -- b\.mjs` \(a trial cannot delete a file: dropped, it is invalid\), then `git reset && git stash drop`, and try again\n$/,
    );
    // Done as it says: each file as described, the edits in the stash until dropped.
    sh(
      root,
      "{ git stash && git checkout autoresearch/t && git stash pop; } >/dev/null 2>&1 || true",
    );
    expect(readFileSync(join(root, "a.mjs"), "utf8")).toBe("export const a = 3;\n");
    expect(readFileSync(join(root, "b.mjs"), "utf8")).toBe("export const b = 2;\n");
    expect(sh(root, "git stash list")).toMatch(/^stash@\{0\}: [^\n]+$/);
    sh(root, "git add -- a.mjs && git rm -q -- b.mjs && git reset -q && git stash drop -q");
    const settled = await tryIt("a 3, no b");
    expect(settled.code, settled.stderr).toBe(0);
    // The settled files are what the trial tried (a deletion is not a change a trial may make).
    expect(settled.stdout).toContain("trial 2: invalid");
    expect(settled.stdout).toContain("changes not allowed: b.mjs (deleted)");
    expect(sh(root, "git show refs/autoresearch/t/trials/2:a.mjs")).toBe("export const a = 3;");
  });

  it("off the incumbent, finds repositories of the user's where the incumbent adds files inside, and moves each", async () => {
    const root = quadraticTask({
      yaml: QUADRATIC_YAML.map((l) =>
        l.startsWith("editable:") ? "editable: [train.mjs, lib/x.mjs, side/y.mjs]" : l,
      ).join("\n"),
    });
    const tryIt = (title: string) => runCli(["try", "-C", root, "--tag", "t", "-m", title]);
    sh(root, "sed -i 's/^const X = .*;/const X = 2;/' train.mjs && mkdir lib side");
    sh(root, "echo 1 > lib/x.mjs && echo 1 > side/y.mjs");
    expect((await tryIt("X 2, lib and side")).code).toBe(0);
    // Back on main: lib is a repository of the user's, side a linked worktree, each with
    // the file the incumbent adds there (git lists nothing inside either).
    sh(root, "git checkout -q main && git init -q lib && echo mine > lib/x.mjs");
    sh(root, "git worktree add -q -b side side main && echo mine > side/y.mjs");
    sh(root, "sed -i 's/^const Y = .*;/const Y = 0;/' train.mjs");
    const refused = await tryIt("Y 0");
    expect(refused.code).toBe(2);
    const moves = /for example `([^`]+)`/.exec(refused.stderr)?.[1];
    expect(refused.stderr).toContain("lib/, side/ are git repositories of your own");
    expect(moves).toBe(
      "mv -- lib ../lib.aside && mv -- side ../side.aside && git -C ../side.aside worktree repair",
    );
    // Followed, with a folder of the test's own in place of ../ (shared /tmp): try then
    // gives the advice for the edits alone.
    const away = tempDir();
    sh(root, moves!.replaceAll("../", `${away}/`));
    expect(sh(root, "git worktree list --porcelain")).toContain(`worktree ${away}/side.aside\n`);
    const next = await tryIt("Y 0");
    expect(next.code).toBe(2);
    expect(next.stderr).toContain(
      "run `git stash && git checkout autoresearch/t && git stash pop` (your edits come along, onto the incumbent)",
    );

    // A name git would read as a pattern is given to mv as it is; a .git file that points
    // to its repository by a relative path (a submodule's) gets no move that breaks it.
    sh(root, "rm -rf lib && mkdir -p lib/x.mjs && git init -q 'lib/x.mjs/x[1]'");
    const magic = await tryIt("Y 0");
    expect(/for example `([^`]+)`/.exec(magic.stderr)?.[1]).toBe(
      "mv -- 'lib/x.mjs/x[1]' '../x[1].aside'",
    );
    sh(root, "rm -rf lib && mkdir -p lib/x.mjs .git/modules");
    sh(root, "git init -q --separate-git-dir=.git/modules/sub lib/x.mjs/sub");
    sh(root, "echo 'gitdir: ../../../.git/modules/sub' > lib/x.mjs/sub/.git");
    const relative = await tryIt("Y 0");
    expect(relative.code).toBe(2);
    expect(relative.stderr).toContain(
      "move it out of this checkout first (one's .git file points to its repository by a path relative to it, which a plain move breaks: move that one with the tool that made it), then try again",
    );
  });

  it("off the incumbent, says where the pop puts an edited file whose place the incumbent gave a folder", async () => {
    const root = quadraticTask({ extra: { cfg: "a = 1\n" } });
    const tryIt = (title: string) => runCli(["try", "-C", root, "--tag", "t", "-m", title]);
    // The run starts from a commit that makes cfg a folder; the user, on main, edits the file.
    sh(
      root,
      "git checkout -q -b work && git rm -q cfg && mkdir cfg && echo 'a = 2' > cfg/main && git add cfg && git -c user.name=t -c user.email=t@t commit -qm work",
    );
    sh(root, "sed -i 's/^const X = .*;/const X = 2;/' train.mjs");
    expect((await tryIt("X 2")).code).toBe(0);
    sh(root, "git checkout -q main && echo 'a = 3' > cfg");
    // Where the pop would put it, a file is already: that one is to move first, or the pop
    // would apply nothing and a drop would lose the edits.
    writeFileSync(join(root, "cfg~Stashed changes"), "left over\n");
    const taken = await tryIt("a 3");
    expect(taken.code).toBe(2);
    expect(taken.stderr).toContain(
      "the pop would put your version at cfg~Stashed changes, where a file is already: move it out of the way first (for example `mv -- 'cfg~Stashed changes' 'cfg~Stashed changes.old'`), then try again",
    );
    sh(root, "mv -- 'cfg~Stashed changes' 'cfg~Stashed changes.old'");
    const refused = await tryIt("a 3");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /whose changes conflict with your edits in cfg: run `git stash && git checkout autoresearch\/t && git stash pop`; the pop will stop on the conflict, keeping your edits in the stash: the incumbent has a folder where you edited the file cfg, and the pop leaves your version beside it as 'cfg~Stashed changes': carry your edits into the folder's files by hand, then `git rm -q -- 'cfg~Stashed changes'`, then `git reset && git stash drop`, and try again\n$/,
    );
    // Done as it says: the file is where it said, and the steps leave a clean checkout.
    sh(
      root,
      "{ git stash && git checkout autoresearch/t && git stash pop; } >/dev/null 2>&1 || true",
    );
    expect(readFileSync(join(root, "cfg~Stashed changes"), "utf8")).toBe("a = 3\n");
    sh(
      root,
      "echo 'a = 3' > cfg/main && git rm -q -- 'cfg~Stashed changes' && git reset -q && git stash drop -q",
    );
    expect(sh(root, "git status --porcelain")).toBe('M cfg/main\n?? "cfg~Stashed changes.old"');
  });

  it("a tracked file made a folder is a deletion, tried as such, not a crash", async () => {
    const root = quadraticTask({
      yaml: QUADRATIC_YAML.map((l) =>
        l.startsWith("editable:") ? 'editable: [train.mjs, cfg, "cfg/**"]' : l,
      ).join("\n"),
      extra: { cfg: "a = 1\n" },
    });
    sh(root, "rm cfg && mkdir cfg && echo 'a = 2' > cfg/main");
    sh(root, "sed -i 's/^const X = .*;/const X = 2;/' train.mjs");
    const tried = await runCli(["try", "-C", root, "--tag", "t", "-m", "cfg a folder"]);
    expect(tried.stderr).not.toContain("unexpected error");
    expect(tried.stdout).toContain("invalid");
    expect(tried.stdout).toContain("cfg (deleted)");
    // Reverted like any invalid change, and kept under the trial's ref.
    expect(sh(root, "git show refs/autoresearch/t/trials/1:cfg/main")).toBe("a = 2");
    expect(readFileSync(join(root, "cfg"), "utf8")).toBe("a = 1\n");
  });

  it("refuses a run's unknown recorded sandbox before recovering anything", async () => {
    const root = quadraticTask();
    sh(root, "sed -i 's/^const X = .*;/const X = 2;/' train.mjs");
    expect((await runCli(["try", "-C", root, "--tag", "s", "-m", "X 2"])).code).toBe(0);
    // A try killed while its researcher proposed left a trial in flight; a later version
    // recorded a sandbox mode this one does not know.
    const ledger = Ledger.open(root);
    const run = ledger.run("s")!;
    const parentCommit = ledger.incumbent(run.id)!.commit!;
    ledger.createTrial({ runId: run.id, baseline: false, parentCommit, researcher: "agent" });
    ledger.db.prepare("UPDATE runs SET sandbox = 'jail'").run();
    ledger.close();
    const inFlight = () => {
      const after = Ledger.open(root);
      const trial = after.trials(after.run("s")!.id).at(-1)!;
      after.close();
      return [trial.n, trial.state];
    };
    sh(root, "sed -i 's/^const X = .*;/const X = 3;/' train.mjs");
    const refused = await runCli(["try", "-C", root, "-m", "X 3"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      'records the sandbox mode "jail", which this autoresearch does not know; record one it knows with `autoresearch resume --tag',
    );
    expect(inFlight()).toEqual([2, "proposing"]);
    // Given a mode, the try recovers the run and goes on.
    const given = await runCli(["try", "-C", root, "-m", "X 3", "--sandbox", "none"]);
    expect(given.code, given.stderr).toBe(0);
    expect(given.stdout).toContain("trial 3: keep");
  });

  it("prints the program.md section for agents", async () => {
    const result = await runCli(["instructions"]);
    expect(result.stdout).toContain('autoresearch try -m "<short title of the change>"');
  });
});
