import { chmodSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { WorkspaceError } from "../../src/errors.js";
import { protectedFingerprint, tamperedFiles } from "../../src/workspace/protect.js";
import {
  checkClean,
  checkRepository,
  checkTag,
  excludeStateDir,
  headCommit,
  resolveRef,
  setRef,
  stashCarry,
} from "../../src/workspace/repo.js";
import { EditScope } from "../../src/workspace/scope.js";
import {
  addWorktree,
  commitWorktree,
  diffCommits,
  removeWorktree,
  revertIn,
} from "../../src/workspace/worktree.js";
import { makeRepo, sh, tempDir } from "../helpers.js";

describe("the task repository", () => {
  it("must be the top of a git repository with a commit", async () => {
    const plain = tempDir();
    await expect(checkRepository(plain)).rejects.toThrow(
      /is not a git repository; the task must be one: git init/,
    );
    sh(plain, "git init -q");
    await expect(checkRepository(plain)).rejects.toThrow(/has no commits yet/);
    const repo = makeRepo({ "a/x.py": "X = 1\n" });
    await expect(checkRepository(join(repo, "a"))).rejects.toThrow(
      /is inside the repository .* but is not its top/,
    );
    await expect(checkRepository(repo)).resolves.toBeUndefined();
  });

  it("refuses a dirty tree and lists what is uncommitted", async () => {
    const repo = makeRepo({ "train.py": "X = 1\n" });
    await checkClean(repo);
    writeFileSync(join(repo, "train.py"), "X = 2\n");
    writeFileSync(join(repo, "notes.txt"), "new\n");
    writeFileSync(join(repo, "model.py"), "new code\n");
    const editable = (path: string) => path.endsWith(".py");
    const error = await checkClean(repo, editable).catch((e) => e);
    expect(error).toBeInstanceOf(WorkspaceError);
    expect(error.message).toMatch(
      /uncommitted changes that the run would leave out .*commit them, or stash them/,
    );
    expect(error.message).toContain(" M train.py");
    // A new file the code may need is listed; the person's notes are theirs.
    expect(error.message).toContain("?? model.py");
    expect(error.message).not.toContain("notes.txt");
    writeFileSync(join(repo, "train.py"), "X = 1\n");
    await checkClean(repo, (path) => path === "train.py");
  });

  it("hides the state folder from git once, without touching tracked files", async () => {
    const repo = makeRepo({ "train.py": "X = 1\n" });
    await excludeStateDir(repo);
    await excludeStateDir(repo);
    const exclude = readFileSync(join(repo, ".git/info/exclude"), "utf8");
    expect(exclude.match(/\/\.autoresearch\//g)).toHaveLength(1);
    mkdirSync(join(repo, ".autoresearch"));
    writeFileSync(join(repo, ".autoresearch/ledger.db"), "x");
    await checkClean(repo);
  });

  it("foresees a stash's pop with untracked files in the way, reading its copy of the index as git reads the index", async () => {
    const root = makeRepo({ "a.txt": "a\n" });
    sh(
      root,
      "git checkout -q -b inc && echo c > a.txt && echo inc > 'n[1].txt' && git add -A && git -c user.name=t -c user.email=t@t commit -qm inc && git checkout -q main",
    );
    // An untracked file where the incumbent adds one, named like a pattern that another
    // untracked file matches.
    writeFileSync(join(root, "n[1].txt"), "mine\n");
    writeFileSync(join(root, "n1.txt"), "other\n");
    // An edit that keeps the size and time the index recorded, in the index's own second:
    // git reads the file's content only because the index is not newer than the file.
    sh(
      root,
      "git config core.trustctime false && touch -d @1700000000 a.txt && git update-index -q --refresh && echo b > a.txt && touch -d @1700000000 a.txt .git/index",
    );
    const carry = await stashCarry(root, "inc");
    expect(carry.inTheWay).toEqual(["n[1].txt"]);
    expect(carry.conflicts).toEqual([
      { path: "a.txt", kind: "markers" },
      { path: "n[1].txt", kind: "markers" },
    ]);
    expect(sh(root, "git stash list")).toBe("");
    expect(sh(root, "git status --porcelain")).toBe("M a.txt\n?? n1.txt\n?? n[1].txt");
  });

  it("accepts plain tags only", () => {
    expect(checkTag("nov27")).toBe("nov27");
    expect(checkTag("run-2.b_c")).toBe("run-2.b_c");
    for (const bad of ["", "a b", "../x", "a..b", "x.lock", "-x", "a/b", "a:b"])
      expect(() => checkTag(bad)).toThrow(/is not a valid run tag/);
  });

  it("moves refs only from the expected commit", async () => {
    const repo = makeRepo({ "a.txt": "1\n" });
    const head = await headCommit(repo);
    await setRef(repo, "refs/heads/autoresearch/t", head, null);
    await expect(setRef(repo, "refs/heads/autoresearch/t", head, null)).rejects.toThrow();
    sh(repo, "echo 2 > a.txt && git -c user.name=t -c user.email=t@t commit -qam two");
    const second = await headCommit(repo);
    await expect(setRef(repo, "refs/heads/autoresearch/t", second, second)).rejects.toThrow();
    await setRef(repo, "refs/heads/autoresearch/t", second, head);
    expect(await resolveRef(repo, "refs/heads/autoresearch/t")).toBe(second);
    expect(await resolveRef(repo, "refs/heads/none")).toBeNull();
  });
});

describe("worktrees and commits", () => {
  it("commits everything in a worktree, ignored files too, with the harness identity and HEAD unmoved", async () => {
    const repo = makeRepo({
      "train.py": "X = 1\nY = 2\n",
      "prepare.py": "P = 1\n",
      ".gitignore": "*.log\n",
    });
    const head = await headCommit(repo);
    const wt = join(tempDir(), "wt");
    await addWorktree(repo, wt, head);
    const empty = await commitWorktree(wt, head, "nothing");
    expect(await diffCommits(repo, head, empty)).toEqual({
      changes: [],
      added: 0,
      removed: 0,
      patch: "",
    });
    writeFileSync(join(wt, "train.py"), "X = 3\nY = 2\nZ = 4\n");
    writeFileSync(join(wt, "new.py"), "N = 1\n");
    writeFileSync(join(wt, "debug.log"), "ignored but read by the program\n");
    const commit = await commitWorktree(wt, head, "X 1 → 3\n\nhypothesis");
    expect(commit).toMatch(/^[0-9a-f]{40}$/);
    expect(sh(repo, `git log -1 --format=%an%n%s%n%P ${commit}`)).toBe(
      `autoresearch\nX 1 → 3\n${head}`,
    );
    expect(sh(wt, "git rev-parse HEAD")).toBe(head);
    const diff = await diffCommits(repo, head, commit);
    expect(diff.patch).toMatch(/^diff --git a\/debug.log b\/debug.log\n/);
    expect(diff.patch).toContain("+X = 3\n");
    expect(diff.patch).toBe(`${sh(repo, `git diff --binary ${head} ${commit}`)}\n`);
    expect({ ...diff, patch: undefined }).toEqual({
      patch: undefined,
      changes: [
        { path: "debug.log", status: "added", oldMode: "000000", newMode: "100644" },
        { path: "new.py", status: "added", oldMode: "000000", newMode: "100644" },
        { path: "train.py", status: "modified", oldMode: "100644", newMode: "100644" },
      ],
      added: 4,
      removed: 1,
    });
    await removeWorktree(repo, wt);
    expect(sh(repo, "git worktree list").split("\n")).toHaveLength(1);
    // A leftover folder from a killed run is replaced.
    await addWorktree(repo, wt, head);
    await addWorktree(repo, wt, head);
    await removeWorktree(repo, wt);
  });
});

describe("the edit scope", () => {
  const scope = new EditScope({
    editable: ["train.py", "src/**/*.py"],
    protected: ["src/eval.py"],
    program: "program.md",
  });

  it("allows editable paths and names why others are refused", () => {
    expect(scope.refusal("train.py")).toBeNull();
    expect(scope.refusal("src/model/net.py")).toBeNull();
    expect(scope.refusal("src/eval.py")).toBe("protected");
    expect(scope.refusal("prepare.py")).toBe("not editable");
    expect(scope.refusal("autoresearch.yaml")).toBe("the task file");
    expect(scope.refusal("program.md")).toBe("the program");
    expect(scope.refusal(".git/config")).toBe("harness or git files");
    expect(scope.refusal(".autoresearch/ledger.db")).toBe("harness or git files");
  });

  it("refuses links, submodules, empty proposals and lists every offending path", () => {
    const change = (path: string, newMode = "100644") => ({
      path,
      status: "modified" as const,
      oldMode: "100644",
      newMode,
    });
    expect(scope.check([change("train.py")])).toEqual({ ok: true });
    expect(scope.check([])).toEqual({ ok: false, reason: "the proposal changed nothing" });
    expect(scope.check([change("train.py"), change("prepare.py"), change("src/eval.py")])).toEqual({
      ok: false,
      reason: "changes not allowed: prepare.py (not editable), src/eval.py (protected)",
    });
    expect(scope.check([change("train.py", "120000")]).ok).toBe(false);
    expect(scope.check([change("src/lib.py", "160000")])).toEqual({
      ok: false,
      reason: "changes not allowed: src/lib.py (a submodule)",
    });
  });
});

describe("protected files", () => {
  it("detects a changed, deleted, re-moded or linked protected file", async () => {
    const repo = makeRepo({ "prepare.py": "P = 1\n", "data/a.txt": "a\n", "train.py": "X = 1\n" });
    const head = await headCommit(repo);
    const expected = await protectedFingerprint(repo, head, ["prepare.py", "data/**"]);
    expect([...expected.keys()]).toEqual(["data/a.txt", "prepare.py"]);
    expect(tamperedFiles(repo, expected)).toEqual([]);
    writeFileSync(join(repo, "train.py"), "X = 2\n");
    expect(tamperedFiles(repo, expected)).toEqual([]);
    writeFileSync(join(repo, "prepare.py"), "P = 2\n");
    expect(tamperedFiles(repo, expected)).toEqual(["prepare.py"]);
    sh(repo, "git checkout -q prepare.py");
    chmodSync(join(repo, "prepare.py"), 0o755);
    expect(tamperedFiles(repo, expected)).toEqual(["prepare.py"]);
    sh(repo, "git checkout -q prepare.py && chmod 644 prepare.py");
    rmSync(join(repo, "data/a.txt"));
    symlinkSync("/etc/hostname", join(repo, "data/a.txt"));
    expect(tamperedFiles(repo, expected)).toEqual(["data/a.txt"]);
    rmSync(join(repo, "data/a.txt"));
    expect(tamperedFiles(repo, expected)).toEqual(["data/a.txt"]);
  });

  it("are untouched when git checked them out with CRLF line ends, and tampered when changed", async () => {
    const repo = makeRepo({
      "prepare.py": "P = 1\nQ = 2\n",
      ".gitattributes": "*.py text eol=crlf\n",
    });
    rmSync(join(repo, "prepare.py"));
    sh(repo, "git checkout -q prepare.py");
    expect(readFileSync(join(repo, "prepare.py"), "utf8")).toBe("P = 1\r\nQ = 2\r\n");
    const expected = await protectedFingerprint(repo, await headCommit(repo), ["prepare.py"]);
    expect(tamperedFiles(repo, expected)).toEqual([]);
    writeFileSync(join(repo, "prepare.py"), "P = 2\r\nQ = 2\r\n");
    expect(tamperedFiles(repo, expected)).toEqual(["prepare.py"]);
  });
});

describe("taking one change out of a later commit", () => {
  /** Commits `files` (path → text or bytes, or a link's target after "->"); the commit. */
  const commitFiles = (root: string, files: Record<string, string | Buffer>, message: string) => {
    for (const [path, content] of Object.entries(files)) {
      rmSync(join(root, path), { force: true });
      if (typeof content === "string" && content.startsWith("->"))
        symlinkSync(content.slice(2), join(root, path));
      else writeFileSync(join(root, path), content);
    }
    sh(root, `git add -A && git -c user.name=t -c user.email=t@t commit -qm "${message}"`);
    return sh(root, "git rev-parse HEAD");
  };
  const without = async (root: string, head: string, change: string) => {
    const worktree = join(tempDir(), "w");
    await addWorktree(root, worktree, head);
    const taken = await revertIn(worktree, change);
    const clean = sh(worktree, "git status --porcelain") === "";
    const read = (file: string) => readFileSync(join(worktree, file), "utf8");
    return { taken, clean, read, path: worktree, done: () => removeWorktree(root, worktree) };
  };

  const commit = (root: string, text: string, message: string) =>
    commitFiles(root, { "train.py": text }, message);

  it("takes out a change whose neighbouring line a later one edited, and refuses one whose own line it edited", async () => {
    const root = makeRepo({ "train.py": "LR = 0.04\nWD = 0.1\nSTEPS = 10\n" });
    const lr = commit(root, "LR = 0.08\nWD = 0.1\nSTEPS = 10\n", "LR");
    const wd = commit(root, "LR = 0.08\nWD = 0.2\nSTEPS = 10\n", "WD");
    // git's own revert conflicts here: the two changes are within its three lines of context.
    const taken = await without(root, wd, lr);
    expect(taken.taken).toBe(true);
    expect(taken.read("train.py")).toBe("LR = 0.04\nWD = 0.2\nSTEPS = 10\n");
    expect(sh(taken.path, "git diff --cached --name-only")).toBe("train.py");
    await taken.done();

    // A later change of the same line: LR cannot be taken out alone, and nothing is left behind.
    const again = commit(root, "LR = 0.16\nWD = 0.2\nSTEPS = 10\n", "LR again");
    const refused = await without(root, again, lr);
    expect(refused.taken).toBe(false);
    expect(refused.read("train.py")).toBe("LR = 0.16\nWD = 0.2\nSTEPS = 10\n");
    expect(refused.clean).toBe(true);
    await refused.done();
  });

  it("reads a file's name as a name, not a pattern", async () => {
    const root = makeRepo({ "[ab].txt": "a\nb\nv = 1\nv = 2\n", "a.txt": "x\n" });
    const change = commitFiles(root, { "[ab].txt": "a\nb\nv = 2\nv = 2\n" }, "X");
    const head = commitFiles(
      root,
      { "[ab].txt": "a\nB\nv = 2\nv = 2\n", "a.txt": "new\nx\n" },
      "later",
    );
    const w = await without(root, head, change);
    expect(w.taken).toBe(true);
    expect(w.read("[ab].txt")).toBe("a\nB\nv = 1\nv = 2\n");
    expect(w.read("a.txt")).toBe("new\nx\n");
    await w.done();
  });

  it("stores a file that git converts on checkout as git would, and refuses a link", async () => {
    // Stored as UTF-8, checked out as ISO-8859-1: the two differ in their bytes.
    const root = makeRepo({ ".gitattributes": "*.txt working-tree-encoding=ISO-8859-1\n" });
    commitFiles(root, { "t.txt": Buffer.from('a\ns = "café"\nc\n', "latin1") }, "latin1");
    const change = commitFiles(root, { "t.txt": "a\nc\n" }, "X");
    const head = commitFiles(root, { "t.txt": "A\nc\n" }, "later");
    const converted = await without(root, head, change);
    expect(converted.taken).toBe(true);
    // Stored in UTF-8 once (not converted twice), checked out in ISO-8859-1.
    expect(sh(converted.path, "git show :t.txt")).toBe('A\ns = "café"\nc');
    const bytes = readFileSync(join(converted.path, "t.txt"));
    expect(bytes.equals(Buffer.from('A\ns = "café"\nc\n', "latin1"))).toBe(true);
    expect(sh(converted.path, "git status --porcelain")).toBe("M  t.txt");
    await converted.done();

    const links = makeRepo({ "t.py": "LR = 1\nWD = 1\n", "d1/k": "1\n", "d2/k": "2\n" });
    commitFiles(links, { l: "->d1" }, "link");
    const moved = commitFiles(links, { "t.py": "LR = 2\nWD = 1\n", l: "->d2" }, "X");
    const later = commitFiles(links, { "t.py": "LR = 2\nWD = 2\n" }, "later");
    const linked = await without(links, later, moved);
    expect([linked.taken, linked.clean]).toEqual([false, true]);
    await linked.done();
  });

  it("refuses to take out a merge or the first commit", async () => {
    const root = makeRepo({ "t.py": "a = 1\n" });
    const first = sh(root, "git rev-parse HEAD");
    sh(
      root,
      "git checkout -qb side && echo 'b = 1' > b.py && git add -A && git -c user.name=t -c user.email=t@t commit -qm side",
    );
    sh(
      root,
      "git checkout -q main && git -c user.name=t -c user.email=t@t merge -q --no-ff -m merge side",
    );
    const merge = sh(root, "git rev-parse HEAD");
    for (const change of [merge, first]) {
      const w = await without(root, merge, change);
      expect([w.taken, w.clean]).toEqual([false, true]);
      await w.done();
    }
  });

  it("refuses to restore a line that was not UTF-8 rather than corrupt it", async () => {
    const root = makeRepo({ "train.py": "a = 1\nb = 2\n" });
    commitFiles(
      root,
      { "train.py": Buffer.from('a = 1\ns = "caf\xe9"\nb = 2\n', "latin1") },
      "latin1",
    );
    const changed = commit(root, 'a = 1\ns = "cafe"\nb = 2\n', "change");
    const head = commit(root, 'a = 1\ns = "cafe"\nb = 3\n', "later");
    const w = await without(root, head, changed);
    expect([w.taken, w.clean]).toEqual([false, true]);
    await w.done();
  });

  // [what the change did, the file before it, after it, after later changes, without it]
  const cases: [string, string, string, string, string | null][] = [
    [
      "edited one of two equal lines; later, lines above and the neighbour",
      "x = 1\ny = 2\nx = 1\nz = 3\n",
      "x = 1\ny = 2\nx = 5\nz = 3\n",
      "a = 0\nb = 0\nx = 1\ny = 2\nx = 5\nz = 4\n",
      "a = 0\nb = 0\nx = 1\ny = 2\nx = 1\nz = 4\n",
    ],
    [
      "deleted a line; later, a line above and the one below",
      "p = 1\nq = 2\nr = 3\n",
      "p = 1\nr = 3\n",
      "o = 0\np = 1\nr = 4\n",
      "o = 0\np = 1\nq = 2\nr = 4\n",
    ],
    [
      "added a line; later, the one above and a line removed at the top",
      "top\np = 1\nr = 3\n",
      "top\np = 1\nq = 2\nr = 3\n",
      "p = 9\nq = 2\nr = 3\n",
      "p = 9\nr = 3\n",
    ],
    [
      "edited one of two equal lines, which a later change edited again",
      "def a():\n    k = 1\n    return k\n\ndef b():\n    k = 2\n    return k\n",
      "def a():\n    k = 2\n    return k\n\ndef b():\n    k = 2\n    return k\n",
      "def a():\n    k = 3\n    return k\n\ndef b():\n    k = 2\n    return k\n",
      null,
    ],
    [
      "deleted a line; later, a line inserted at that very place",
      "p = 1\nq = 2\nr = 3\n",
      "p = 1\nr = 3\n",
      "p = 1\nn = 0\nr = 3\n",
      null,
    ],
  ];
  it.each(cases)("%s", async (_, base, change, later, expected) => {
    const root = makeRepo({ "train.py": base });
    // The user's settings for `git diff` must not change what is undone.
    sh(root, "git config diff.noprefix true && git config color.ui always");
    sh(root, "git config diff.external /bin/false && git config diff.interHunkContext 5");
    const changed = commit(root, change, "change");
    const head = commit(root, later, "later");
    const w = await without(root, head, changed);
    expect(w.taken).toBe(expected !== null);
    expect(w.read("train.py")).toBe(expected ?? later);
    await w.done();
  });
});
