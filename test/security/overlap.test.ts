import { execFileSync } from "node:child_process";
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { quadraticTask, runCli } from "../helpers.js";

/**
 * Without the sandbox a program can write outside its worktree, and with proposals ahead
 * and several slots, other programs run while it does. Trial 1 changes X to 2 (a win) and
 * also writes `target` (relative to its worktree), then keeps running a while; the later
 * trials run for less time and make a clean change of X. The harness must blame trial 1 alone.
 */
function overlappingTask(
  at: "propose" | "replicate" | "replicate-when-others",
  target: string,
): string {
  const slow = (s: number) =>
    `Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${s * 1000});`;
  const researcher =
    at === "propose"
      ? [
          "const fs = require('node:fs');",
          "const req = JSON.parse(fs.readFileSync(0, 'utf8'));",
          "const src = fs.readFileSync('train.mjs', 'utf8');",
          // Trial 1 waits (3 s at most) for another proposal to start, so they overlap on
          // a loaded machine too; the others say they started, beside the worktrees.
          "if (req.trial === 1) {",
          "  fs.writeFileSync('train.mjs', src.replace('const X = 1;', 'const X = 2;'));",
          `  fs.appendFileSync(${JSON.stringify(target)}, '\\n# written by trial 1\\n');`,
          "  for (let i = 0; i < 60 && !fs.existsSync('../other-started'); i++)",
          `    ${slow(0.05)}`,
          `  ${slow(1.5)}`,
          "} else {",
          "  fs.writeFileSync('../other-started', '');",
          `  ${slow(1)}`,
          // biome-ignore lint/suspicious/noTemplateCurlyInString: the researcher's own source
          "  fs.writeFileSync('train.mjs', src.replace(/const X = [^;]+;/, `const X = ${1 + req.trial / 10};`));",
          "}",
          "console.log(JSON.stringify({ title: 'trial ' + req.trial, hypothesis: 'h' }));",
        ]
      : [
          // The replicates do it: trial 1's program writes outside as it runs (sneak.mjs).
          "const fs = require('node:fs');",
          "const req = JSON.parse(fs.readFileSync(0, 'utf8'));",
          "const src = fs.readFileSync('train.mjs', 'utf8');",
          "const wait = 'await new Promise((r) => setTimeout(r, 1000));';",
          "fs.writeFileSync('train.mjs', req.trial === 1",
          "  ? 'import \"./sneak.mjs\";\\n' + src.replace('const X = 1;', 'const X = 2;')",
          // biome-ignore lint/suspicious/noTemplateCurlyInString: the researcher's own source
          "  : wait + '\\n' + src.replace(/const X = [^;]+;/, `const X = ${1 + req.trial / 10};`));",
          "console.log(JSON.stringify({ title: 'trial ' + req.trial, hypothesis: 'h' }));",
        ];
  // Counts the log writers of this task's running replicates (other tests run beside it):
  // more than its own means others run. It waits (3 s at most) for another to start, so
  // they overlap on a loaded machine too.
  const always = at !== "replicate-when-others";
  const sneak = [
    'import { appendFileSync, readdirSync, readFileSync } from "node:fs";',
    'import { resolve } from "node:path";',
    "const mark = 'AR_LOG_WRITER=' + resolve('../../..');",
    "const others = () => readdirSync('/proc').filter((p) => {",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the program's own source
    "  try { return readFileSync(`/proc/${p}/environ`, 'latin1').includes(mark); }",
    "  catch { return false; }",
    "}).length > 1;",
    `const write = () => appendFileSync(${JSON.stringify(target)}, '\\n# written by trial 1\\n');`,
    `if (${always}) write();`,
    "for (let i = 0; i < 60 && !others(); i++) await new Promise((r) => setTimeout(r, 50));",
    `if (!${always} && others()) write();`,
    "await new Promise((r) => setTimeout(r, 1500));",
  ];
  return quadraticTask({
    yaml: [
      "editable: [train.mjs]",
      "run: node train.mjs",
      "metric: { name: score, goal: minimize }",
      "judge: { policy: greedy }",
      "sandbox: none",
      "researcher: { kind: command, command: node research.cjs }",
    ].join("\n"),
    extra: {
      "research.cjs": `${researcher.join("\n")}\n`,
      "sneak.mjs": `${sneak.join("\n")}\n`,
    },
  });
}

async function run(root: string, args: string[]) {
  const cli = await runCli(["run", "-C", root, "--tag", "o", "--max-trials", "4", ...args], {
    timeoutMs: 120_000,
  });
  expect(cli.code, cli.stderr).toBe(0);
  const ledger = Ledger.open(root);
  const id = ledger.run("o")!.id;
  const trials = ledger.trials(id);
  const suspects = ledger.events(id).filter((e) => e.kind === "suspect");
  ledger.close();
  return { cli, trials, suspects };
}

describe("a task file changed while no orchestrator watched", () => {
  it("stops resume, which names it and how to put it back", async () => {
    const root = quadraticTask();
    const first = await runCli(["run", "-C", root, "--tag", "r", "--max-trials", "1"]);
    expect(first.code, first.stderr).toBe(0);
    appendFileSync(join(root, "autoresearch.yaml"), "\n# written by a program\n");
    const refused = await runCli(["resume", "-C", root, "--max-trials", "2"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(
      /autoresearch\.yaml differs from the last commit: .*`git checkout -- autoresearch\.yaml`/,
    );
    execFileSync("git", ["checkout", "--", "autoresearch.yaml"], { cwd: root });
    const resumed = await runCli(["resume", "-C", root, "--max-trials", "2"]);
    expect(resumed.code, resumed.stderr).toBe(0);
  });
});

describe("a change outside a worktree while trials overlap", () => {
  it("made by a researcher with proposals in flight is blamed on it alone, and put back", async () => {
    const root = overlappingTask("propose", "../../../.git/config");
    const before = readFileSync(join(root, ".git/config"), "utf8");
    const { trials, suspects } = await run(root, ["--slots", "2"]);
    // The proposals did overlap, and the change was first found by another one.
    expect(suspects.length).toBeGreaterThan(0);
    expect(trials[1]).toMatchObject({
      verdict: "invalid",
      reason: "the researcher wrote outside its worktree: .git/config",
    });
    for (const t of trials.slice(2)) {
      expect(t.verdict, `#${t.n}: ${t.reason}`).not.toBe("invalid");
      expect(t.title).toMatch(/^trial \d/);
    }
    expect(trials.map((t) => t.verdict)).toContain("keep");
    expect(readFileSync(join(root, ".git/config"), "utf8")).toBe(before);
  });

  it("made by a replicate on one of several slots is blamed on its trial alone, and the user's task file put back", async () => {
    const root = overlappingTask("replicate", "../../../autoresearch.yaml");
    const before = readFileSync(join(root, "autoresearch.yaml"), "utf8");
    const { trials, suspects } = await run(root, ["--slots", "3"]);
    expect(suspects.length).toBeGreaterThan(0);
    expect(trials[1]).toMatchObject({
      verdict: "tampered",
      reason: "the replicate changed files outside its worktree: autoresearch.yaml",
    });
    for (const t of trials.slice(2))
      expect(["keep", "discard"], `#${t.n}: ${t.reason}`).toContain(t.verdict);
    expect(readFileSync(join(root, "autoresearch.yaml"), "utf8")).toBe(before);
  });

  it("made by a replicate only while others run is never kept, nor are the trials it ran beside", async () => {
    const root = overlappingTask("replicate-when-others", "../../../autoresearch.yaml");
    const before = readFileSync(join(root, "autoresearch.yaml"), "utf8");
    const { trials, suspects } = await run(root, ["--slots", "3"]);
    expect(suspects.length).toBeGreaterThan(0);
    const suspected = new Set(suspects.map((e) => e.trialId));
    expect(suspected.has(trials[1]!.id)).toBe(true);
    for (const t of trials.filter((t) => suspected.has(t.id) && !t.baseline)) {
      expect(t.verdict, `#${t.n}: ${t.reason}`).not.toBe("keep");
      if (t.verdict === "discard" && t.reason?.includes("outside"))
        expect(t.reason).toMatch(/whose doing it was is unknown, so it is not kept/);
    }
    expect(trials[1]!.verdict).toBe("discard");
    expect(trials[1]!.reason).toMatch(/whose doing it was is unknown, so it is not kept/);
    expect(readFileSync(join(root, "autoresearch.yaml"), "utf8")).toBe(before);
  });
});
