import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { quadraticTask, runCli, sh, waitFor } from "../helpers.js";

/** The tag of the task's one run, once it exists. */
const runTag = (root: string) => {
  try {
    return readdirSync(join(root, ".autoresearch/runs"))[0] ?? "none";
  } catch {
    return "none";
  }
};

const setX = (root: string, x: number) =>
  sh(root, `sed -i 's/^const X = .*;/const X = ${x};/' train.mjs`);

describe("try never loses what the person is doing", () => {
  it("does not revert a file edited again while its trial ran", async () => {
    const root = quadraticTask();
    setX(root, 0); // worse than the baseline: discarded
    const running = runCli(["try", "-C", root, "-m", "X to 0"], {
      env: { TEST_SLEEP_S: "3", TEST_SLEEP_TRIAL: "1" },
    });
    // The replicate's log exists from its start; the trial then sleeps for 3 s.
    await waitFor(
      () => existsSync(join(root, ".autoresearch/runs", runTag(root), "trials/1/run.log")),
      60_000,
      "trial 1 running",
    );
    appendFileSync(join(root, "train.mjs"), "// a thought I had meanwhile\n");
    const r = await running;
    expect(r.stdout).toContain("trial 1: discard");
    expect(r.stdout).toContain("not reverted, edited again while the trial ran: train.mjs");
    const now = readFileSync(join(root, "train.mjs"), "utf8");
    expect(now).toContain("// a thought I had meanwhile");
    expect(now).toContain("const X = 0;");
  });

  it("refuses staged changes and an uncommitted task file, naming what to do", async () => {
    const root = quadraticTask();
    setX(root, 2);
    sh(root, "git add train.mjs");
    setX(root, 2.5);
    const staged = await runCli(["try", "-C", root, "-m", "x"]);
    expect(staged.code).toBe(2);
    expect(staged.stderr).toContain("changes are staged (train.mjs)");
    expect(staged.stderr).toContain("unstage them with `git reset` (your edits stay)");
    // Nothing was touched: the staged and the working versions are both still there.
    expect(sh(root, "git diff --cached --name-only")).toBe("train.mjs");
    expect(readFileSync(join(root, "train.mjs"), "utf8")).toContain("const X = 2.5;");

    sh(root, "git reset -q");
    writeFileSync(
      join(root, "autoresearch.yaml"),
      `${readFileSync(join(root, "autoresearch.yaml"), "utf8")}\neditable: ["**"]\n`.replace(
        "editable: [train.mjs]\n",
        "",
      ),
    );
    const task = await runCli(["try", "-C", root, "-m", "x"]);
    expect(task.code).toBe(2);
    expect(task.stderr).toContain(
      "autoresearch.yaml has uncommitted changes: commit them first (a try is judged by the committed task file)",
    );
  });

  it("refuses to move the run's branch back over the person's own commits", async () => {
    const root = quadraticTask();
    setX(root, 2);
    expect((await runCli(["try", "-C", root, "-m", "X to 2"])).stdout).toContain("trial 1: keep");
    // On the run's branch (try checked it out), the person commits notes of their own.
    writeFileSync(join(root, "program.md"), "Make score small. Notes: X near 3.\n");
    sh(root, "git -c user.name=t -c user.email=t@t commit -qam 'my notes'");
    const mine = sh(root, "git rev-parse HEAD");
    // With nothing else to try, the commits are what is said, not "nothing to try".
    const bare = await runCli(["try", "-C", root, "-m", "notes"]);
    expect(bare.code).toBe(4);
    expect(bare.stderr).toContain("has commits the run did not make");
    setX(root, 2.5);
    const r = await runCli(["try", "-C", root, "-m", "X to 2.5"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("has commits the run did not make");
    expect(sh(root, "git rev-parse HEAD")).toBe(mine);
    expect(readFileSync(join(root, "train.mjs"), "utf8")).toContain("const X = 2.5;");
    // What it says to do clears the way: the notes stay on the person's branch, and the
    // edit is tried on the incumbent.
    const keep = /\((git branch my-work [^)]+)\)/.exec(r.stderr)?.[1];
    expect(keep).toMatch(
      /^git branch my-work autoresearch\/\S+ && git checkout -q my-work && git branch -f autoresearch\/\S+ [0-9a-f]{7}$/,
    );
    sh(root, keep!);
    expect(sh(root, "git rev-parse my-work")).toBe(mine);
    // Off the run's branch now, the run is named; try says how to get onto its incumbent.
    const tag = /^git branch my-work autoresearch\/(\S+)/.exec(keep!)![1]!;
    const back = await runCli(["try", "-C", root, "-t", tag, "-m", "X to 2.5"]);
    expect(back.stderr).not.toContain("has commits the run did not make");
    const onto = /run `([^`]+)`/.exec(back.stderr)?.[1];
    sh(root, `${onto!} 2>/dev/null`);
    const tried = await runCli(["try", "-C", root, "-t", tag, "-m", "X to 2.5"]);
    expect(tried.code, tried.stderr).toBe(0);
    expect(tried.stdout).toContain("trial 2:");
  });

  it("keeps control characters a crashing program prints out of the reason", async () => {
    const root = quadraticTask();
    writeFileSync(
      join(root, "train.mjs"),
      'process.stderr.write("Error: \\u001b[2J\\u001b]0;PWNED\\u0007 boom\\n"); process.exit(3);\n',
    );
    sh(root, "git -c user.name=t -c user.email=t@t commit -qam crash");
    const r = await runCli(["run", "-C", root, "-t", "c", "-n", "1"]);
    expect(r.code).toBe(1);
    const status = await runCli(["status", "-C", root, "--trials", "2"]);
    for (const out of [
      r.stdout,
      status.stdout,
      readFileSync(join(root, ".autoresearch/runs/c/results.tsv"), "utf8"),
    ]) {
      expect(out.includes("\u001b") || out.includes("\u0007")).toBe(false);
    }
    expect(r.stdout).toContain("exit code 3: Error: [2J ]0;PWNED boom");
  });
});
