import {
  existsSync,
  lstatSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { startRun } from "../../src/orchestrator/index.js";
import type {
  ProposalRequest,
  ProposalResult,
  Researcher,
} from "../../src/researchers/researcher.js";
import { QUADRATIC_YAML, quadraticTask, sh, tempDir } from "../helpers.js";

const KEY = "sk-adversarial-0123456789abcdef";

/** A researcher that does one hostile thing per trial, then claims a harmless change. */
function hostile(acts: ((worktree: string, root: string) => void)[], root: string): Researcher {
  let i = 0;
  return {
    name: "hostile",
    async propose(request: ProposalRequest): Promise<ProposalResult> {
      const act = acts[i++];
      if (!act) return { ok: false, reason: "out of ideas" };
      act(request.worktree, root);
      return { ok: true, title: `act ${i}`, hypothesis: "harmless, really" };
    },
  };
}

async function run(root: string, researcher: Researcher, maxTrials: number) {
  const result = await startRun({
    root,
    tag: "adv",
    researcher,
    maxTrials,
    lookahead: 0,
    signal: new AbortController().signal,
    emit: () => undefined,
  });
  const ledger = Ledger.open(root);
  const trials = ledger.trials(ledger.run("adv")!.id);
  ledger.close();
  return { result, trials };
}

/** Every object in the repository, as text, to look for what must never have been stored. */
const allObjects = (root: string) =>
  sh(root, "git cat-file --batch-all-objects --batch --unordered | tr -d '\\0'");

describe("adversarial researchers", () => {
  it("refuses hostile proposals with the reason recorded, and puts harness files back", async () => {
    const root = quadraticTask();
    const train = (wt: string) => join(wt, "train.mjs");
    const configBefore = readFileSync(join(root, ".git/config"), "utf8");
    const evaluateBefore = readFileSync(join(root, "evaluate.mjs"), "utf8");
    const victim = join(tempDir(), "precious");
    writeFileSync(victim, "precious\n");
    process.env.FAKE_API_KEY = KEY;
    let baseline: string | null = null;
    try {
      const { result, trials } = await run(
        root,
        hostile(
          [
            // A link in place of the editable file, pointing at the protected evaluator.
            (wt) => {
              unlinkSync(train(wt));
              symlinkSync("evaluate.mjs", train(wt));
            },
            // Up and out of the worktree, into the user's checkout of the evaluator.
            (wt) => writeFileSync(join(wt, "../../../evaluate.mjs"), "// overwritten\n"),
            // Into the repository's git config (a command run on every git status) and hooks.
            (wt) => {
              writeFileSync(
                join(wt, "../../../.git/config"),
                `${configBefore}[core]\n\tfsmonitor = touch /tmp/pwned\n`,
              );
              writeFileSync(join(wt, "../../../.git/hooks/post-checkout"), "#!/bin/sh\n");
            },
            // The worktree's own link to its repository.
            (wt) => writeFileSync(join(wt, ".git"), "gitdir: /tmp/elsewhere\n"),
            (wt) => writeFileSync(train(wt), Buffer.alloc(11 * 1024 * 1024, "a")),
            (wt) => writeFileSync(train(wt), Buffer.from([0, 1, 2, 0, 255, 0, 7])),
            (wt) => rmSync(train(wt)),
            (wt) => writeFileSync(train(wt), `${readFileSync(train(wt), "utf8")}// ${KEY}\n`),
            // The config replaced by a link: putting it back must not write through the link.
            (wt) => {
              const config = join(wt, "../../../.git/config");
              rmSync(config);
              symlinkSync(victim, config);
            },
          ],
          root,
        ),
        10,
      );
      expect(result.status).toBe("finished");
      baseline = trials[0]!.commit;
      const worktreeGit = trials[4]!.reason!;
      expect(trials.slice(1).map((t) => [t.verdict, t.reason])).toEqual([
        ["invalid", "changes not allowed: train.mjs (a symbolic link)"],
        ["invalid", "the researcher wrote outside its worktree: evaluate.mjs"],
        [
          "invalid",
          "the researcher wrote outside its worktree: .git/config, .git/hooks/post-checkout",
        ],
        ["invalid", worktreeGit],
        ["invalid", "not committed: train.mjs (11.0 MB, over the 10 MB limit)"],
        ["invalid", "changes not allowed: train.mjs (a binary file)"],
        ["invalid", "changes not allowed: train.mjs (deleted)"],
        ["invalid", "not committed: train.mjs (holds the value of $FAKE_API_KEY)"],
        ["invalid", "the researcher wrote outside its worktree: .git/config"],
      ]);
      expect(worktreeGit).toMatch(
        /^the researcher wrote outside its worktree: \.autoresearch\/worktrees\/adv-4\/\.git$/,
      );
    } finally {
      delete process.env.FAKE_API_KEY;
    }
    // The harness's files, and the user's checkout of what judges the trials, are as they were.
    expect(readFileSync(join(root, ".git/config"), "utf8")).toBe(configBefore);
    expect(existsSync(join(root, ".git/hooks/post-checkout"))).toBe(false);
    expect(existsSync("/tmp/pwned")).toBe(false);
    expect(lstatSync(join(root, ".git/config")).isSymbolicLink()).toBe(false);
    expect(readFileSync(victim, "utf8")).toBe("precious\n");
    expect(readFileSync(join(root, "evaluate.mjs"), "utf8")).toBe(evaluateBefore);
    // Neither the huge file nor the key was ever stored by git.
    const objects = allObjects(root);
    expect(objects).not.toContain(KEY);
    const sizes = sh(root, "git cat-file --batch-all-objects --batch-check='%(objectsize)'");
    expect(Math.max(...sizes.split("\n").map(Number))).toBeLessThan(1024 * 1024);
    expect(sh(root, "git rev-parse autoresearch/adv")).toBe(baseline);
  });

  it("marks a replicate that rewrites the repository's git config at run time as tampered", async () => {
    // In bubblewrap the write fails (the checkout is read-only); without it, it is caught.
    const root = quadraticTask({ yaml: [...QUADRATIC_YAML, "sandbox: none"].join("\n") });
    const configBefore = readFileSync(join(root, ".git/config"), "utf8");
    const sneaky = (wt: string) => {
      const file = join(wt, "train.mjs");
      writeFileSync(
        file,
        `import { appendFileSync } from "node:fs";\nappendFileSync("../../../.git/config", "[alias]\\n\\tx = !true\\n");\n${readFileSync(file, "utf8").replace("const X = 1;", "const X = 2;")}`,
      );
    };
    const { trials } = await run(root, hostile([sneaky], root), 2);
    expect(trials[1]).toMatchObject({
      verdict: "tampered",
      reason: "the replicate changed files outside its worktree: .git/config",
    });
    expect(readFileSync(join(root, ".git/config"), "utf8")).toBe(configBefore);
    expect(sh(root, "git rev-parse autoresearch/adv")).toBe(trials[0]!.commit);
  });
});
