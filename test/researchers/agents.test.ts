import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ResearcherError } from "../../src/errors.js";
import { Ledger } from "../../src/ledger/ledger.js";
import { startRun } from "../../src/orchestrator/index.js";
import { CLAUDE_TOOLS } from "../../src/researchers/coding-agent.js";
import { runCaptured } from "../../src/researchers/spawn.js";
import { isAlive } from "../../src/util/proc.js";
import { FIXTURES, quadraticTask, tempDir } from "../helpers.js";

const AGENTS = join(FIXTURES, "agents");
let log = "";
let home = "";
const saved = { PATH: process.env.PATH, AGENT_LOG: process.env.AGENT_LOG, HOME: process.env.HOME };
beforeEach(() => {
  // The agents keep their state in their own folders of the home folder, which is all
  // of it they see in the sandbox: the stand-ins log their calls there.
  home = tempDir("ar-home-");
  for (const dir of [".claude", ".codex"]) mkdirSync(join(home, dir));
  process.env.HOME = home;
  log = join(home, ".claude", "agent.log");
  process.env.PATH = `${AGENTS}:${saved.PATH}`;
  process.env.AGENT_LOG = log;
});
afterEach(() => {
  process.env.PATH = saved.PATH;
  process.env.HOME = saved.HOME;
  if (saved.AGENT_LOG === undefined) delete process.env.AGENT_LOG;
});

async function runWith(researcher: string, yamlExtra = "") {
  log = join(home, researcher === "codex" ? ".codex" : ".claude", "agent.log");
  process.env.AGENT_LOG = log;
  const root = quadraticTask({
    yaml: `editable: [train.mjs]\nprotected: [evaluate.mjs]\nrun: node train.mjs\nmetric: { name: score, goal: minimize }\n${yamlExtra}`,
  });
  const result = await startRun({
    root,
    tag: "a",
    researcher,
    maxTrials: 2,
    signal: new AbortController().signal,
    emit: () => undefined,
  });
  const ledger = Ledger.open(root);
  const trials = ledger.trials(ledger.run("a")!.id);
  const proposal = ledger.proposal(trials[1]!.id);
  ledger.close();
  const calls = readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { argv: string[]; cwd: string; prompt: string });
  return { root, result, trials, proposal, calls };
}

describe("coding-agent researchers", () => {
  it("claude-code: runs `claude -p` in the trial's worktree with edits allowed and no approval prompts", async () => {
    const { trials, proposal, calls, root } = await runWith("claude-code");
    expect(calls).toHaveLength(1);
    expect(calls[0]!.argv).toEqual([
      "-p",
      "--output-format",
      "json",
      "--permission-mode",
      "acceptEdits",
      "--allowedTools",
      CLAUDE_TOOLS,
      "--max-turns",
      "40",
    ]);
    expect(calls[0]!.cwd).toBe(join(root, ".autoresearch/worktrees/a-1"));
    expect(calls[0]!.prompt).toContain("Make score small.");
    expect(calls[0]!.prompt).toContain("TITLE: <what changed");
    expect(trials[1]).toMatchObject({
      verdict: "keep",
      metric: 0.5,
      title: "X 1 → 3",
      hypothesis: "the score is smallest at X = 3",
      researcher: "claude-code",
    });
    expect(proposal!.usage).toEqual({
      model: "claude-code",
      tokensIn: 1000,
      tokensOut: 50,
      costUsd: 0.0123,
      turns: 3,
    });
  });

  it("codex: runs `codex exec` sandboxed to the worktree, with extra arguments and the model from the task file", async () => {
    const { trials, calls, root } = await runWith(
      "codex",
      'researcher: { model: gpt-5-codex, args: ["--config", "model_reasoning_effort=high"] }\n',
    );
    const wt = join(root, ".autoresearch/worktrees/a-1");
    const argv = calls[0]!.argv;
    const last = argv[argv.indexOf("--output-last-message") + 1]!;
    expect(argv).toEqual([
      "exec",
      "--sandbox",
      "workspace-write",
      "--skip-git-repo-check",
      "--ephemeral",
      "--cd",
      wt,
      "--output-last-message",
      last,
      "--model",
      "gpt-5-codex",
      "--config",
      "model_reasoning_effort=high",
      "-",
    ]);
    expect(calls[0]!.cwd).toBe(wt);
    expect(trials[1]).toMatchObject({
      verdict: "keep",
      metric: 4,
      title: "Y 0.5 → 0",
      researcher: "codex",
    });
  });

  it("an agent that is not installed is refused before the baseline, with what to do", async () => {
    process.env.PATH = "/usr/bin:/bin";
    const root = quadraticTask();
    const started = startRun({
      root,
      tag: "a",
      researcher: "claude-code",
      maxTrials: 3,
      signal: new AbortController().signal,
      emit: () => undefined,
    });
    await expect(started).rejects.toThrow(ResearcherError);
    await expect(started).rejects.toThrow(
      "--researcher claude-code runs `claude`, which is not on PATH: install it and log in, or choose another researcher",
    );
    // Nothing ran: no run was recorded, so no baseline spent its time.
    expect(existsSync(join(root, ".autoresearch", "ledger.db"))).toBe(false);
  });
});

describe("the command researcher", () => {
  it("gets the context as JSON on stdin, edits the worktree and answers with a JSON line", async () => {
    const root = quadraticTask({
      yaml: `editable: [train.mjs]\nrun: node train.mjs\nmetric: { name: score, goal: minimize }\nresearcher: { kind: command, command: "node ${join(AGENTS, "researcher.mjs")}" }\n`,
    });
    const result = await startRun({
      root,
      tag: "c",
      maxTrials: 2,
      // Asked once the baseline has ended (not beside it), so that its history holds it.
      lookahead: 0,
      signal: new AbortController().signal,
      emit: () => undefined,
    });
    expect(result.status).toBe("finished");
    const ledger = Ledger.open(root);
    const trials = ledger.trials(ledger.run("c")!.id);
    expect(trials[1]).toMatchObject({
      verdict: "keep",
      title: "X from history of 1",
      metric: 0.5,
      researcher: "command",
    });
    expect(ledger.proposal(trials[1]!.id)!.usage).toMatchObject({ model: "mine", costUsd: 0.001 });
    ledger.close();
  });
});

describe("a researcher's program", () => {
  it("owns nothing after it exits: children in its group and ones that left it are ended", async () => {
    const dir = tempDir();
    const script = [
      `sleep 1000 >/dev/null 2>&1 & echo $! > ${dir}/stayed`,
      `setsid sleep 1000 >/dev/null 2>&1 & echo $! > ${dir}/left`,
      "sleep 0.3",
      "echo done",
    ].join("\n");
    const result = await runCaptured("/bin/sh", ["-c", script], {
      cwd: dir,
      input: "",
      timeoutMs: 10_000,
      signal: new AbortController().signal,
    });
    expect(result).toMatchObject({ code: 0, stdout: "done\n", timedOut: false });
    for (const name of ["stayed", "left"])
      expect(isAlive(Number(readFileSync(join(dir, name), "utf8"))), name).toBe(false);
  });
});
