import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import type { TransferTable } from "../../src/ledger/promotions.js";
import { promotions } from "../../src/ledger/promotions.js";
import { startRun } from "../../src/orchestrator/index.js";
import type { ProposalResult, Researcher } from "../../src/researchers/researcher.js";
import { initTask } from "../../src/task/init.js";
import { QUADRATIC_YAML, quadraticTask, runCli, sh, tempDir } from "../helpers.js";

const edit = (from: string, to: string) => (wt: string) => {
  const file = join(wt, "train.mjs");
  writeFileSync(file, readFileSync(file, "utf8").replace(from, to));
  return `${from} → ${to}`;
};

describe("the scale ladder on the demo task", () => {
  it("promotes the stacked incumbent to a longer stage and reports each kept change's transfer", async () => {
    const root = await initTask("demo", join(tempDir(), "demo"));
    const yaml = readFileSync(join(root, "autoresearch.yaml"), "utf8")
      .replace("budget: 5s", "budget: 2s")
      .concat("stages:\n  - { name: short }\n  - { name: long, budget: 4s }\n");
    writeFileSync(join(root, "autoresearch.yaml"), yaml);
    sh(root, "git commit -qam 'a two-stage ladder'");
    const edits = [
      edit("const DEPTH = 1;", "const DEPTH = 2;"),
      edit("const MOMENTUM = 0.5;", "const MOMENTUM = 0.8;"),
    ];
    const researcher: Researcher = {
      name: "scripted",
      async propose(request): Promise<ProposalResult> {
        return { ok: true, title: edits[request.trial - 1]!(request.worktree), hypothesis: "h" };
      },
    };
    await startRun({
      root,
      tag: "lad",
      researcher,
      maxTrials: 3,
      lookahead: 0,
      signal: new AbortController().signal,
      emit: () => undefined,
    });
    const ledger = Ledger.open(root);
    const run = ledger.run("lad")!;
    const kept = ledger.trials(run.id).filter((t) => t.verdict === "keep" && !t.baseline);
    ledger.close();
    expect(kept.length).toBeGreaterThanOrEqual(1);

    const result = await runCli(["promote", "-C", root, "--seeds", "1"], { timeoutMs: 180_000 });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    // Its progress first, as `run` prints it; then the table.
    expect(result.stdout).toMatch(/^promoting #\d+ to stage long \(promotion \d+\)/);
    expect(result.stdout).toMatch(
      /\ntransfer to stage long \(1 seed each\): val_loss baseline [\d.]+ → incumbent [\d.]+, improvement [+-][\d.]+/,
    );
    for (const k of kept)
      expect(result.stdout).toMatch(
        new RegExp(`\\n  #${k.n} +[+-][\\d.]+ +[+-][\\d.]+  (yes|NO) `),
      );
    expect(result.stdout).toMatch(/stacked [+-][\d.]+, single effects summed [+-][\d.]+: /);

    // Stopped midway: no table, said so, the exit code of a stop; recorded as failed.
    const stopped = await runCli(["promote", "-C", root, "--seeds", "1"], {
      timeoutMs: 180_000,
      interruptWhen: /^promoting #/m,
    });
    expect(stopped.code, stopped.stdout).toBe(130);
    expect(stopped.stdout).not.toContain("transfer to stage");
    expect(stopped.stderr).toContain("the promotion stopped before it finished: no transfer table");
    expect(existsSync(join(root, ".autoresearch/runs/lad/promotions/2/transfer.json"))).toBe(false);

    // The search stage is where the changes were found: nothing to promote to.
    const same = await runCli(["promote", "-C", root, "--stage", "short"]);
    expect(same.code).toBe(2);
    expect(same.stderr).toContain('--stage: "short" is the search stage');
    expect(same.stderr).toContain("promote to a later one: long");

    const after = Ledger.open(root);
    const [promotion, halted] = promotions.list(after, run.id);
    expect(halted).toMatchObject({ state: "failed", reason: "stopped before it finished" });
    const table = promotion!.table as TransferTable;
    expect(promotion).toMatchObject({ stage: "long", state: "done", seeds: 1 });
    expect(table.rows.map((r) => r.n)).toEqual(kept.map((k) => k.n));
    expect(table.incumbent).toBeLessThan(table.baseline!);
    const labels = promotions
      .evaluations(after, promotion!.id)
      .map((e) => e.label)
      .sort();
    // With one change, leaving it out is the baseline again, measured once.
    const ablations = kept.length > 1 ? kept.map((k) => `without #${k.n}`) : [];
    expect(labels).toEqual(["baseline", "incumbent", ...ablations].sort());
    after.close();
    // Each evaluation ran at the longer stage.
    const log = readFileSync(
      join(root, ".autoresearch/runs/lad/promotions/1/incumbent/run.42.log"),
      "utf8",
    );
    expect(Number(/training_seconds: ([\d.]+)/.exec(log)![1])).toBeGreaterThanOrEqual(4);
    expect(existsSync(join(root, ".autoresearch/runs/lad/promotions/1/transfer.json"))).toBe(true);
    expect(sh(root, "git worktree list").split("\n")).toHaveLength(1);
  }, 240_000);

  it("calls a promotion whose every evaluation crashed failed, not done", async () => {
    const root = quadraticTask({
      yaml: [
        ...QUADRATIC_YAML,
        "stages:",
        "  - { name: short }",
        "  - { name: long, env: { BREAK: '1' } }",
      ].join("\n"),
    });
    const yaml = readFileSync(join(root, "autoresearch.yaml"), "utf8").replace(
      "run: node train.mjs",
      'run: if [ -n "$BREAK" ]; then echo broken >&2; exit 1; fi; node train.mjs',
    );
    writeFileSync(join(root, "autoresearch.yaml"), yaml);
    sh(root, "git commit -qam 'a stage that crashes'");
    const run = await runCli(["run", "-C", root, "--tag", "c", "--max-trials", "3"]);
    expect(run.code, run.stderr).toBe(0);
    const result = await runCli(["promote", "-C", root, "--tag", "c", "--seeds", "1"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("no evaluation of the incumbent at stage long gave a value");
    const ledger = Ledger.open(root);
    const [p] = promotions.list(ledger, ledger.run("c")!.id);
    ledger.close();
    expect(p).toMatchObject({ state: "failed" });
  }, 120_000);
});
