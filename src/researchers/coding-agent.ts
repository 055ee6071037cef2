import { accessSync, constants, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { ResearcherError } from "../errors.js";
import type { Bind } from "../executors/sandbox.js";
import type { ProposalUsage } from "../ledger/types.js";
import { expandHome } from "../util/fs.js";
import { readHead } from "../util/safe-file.js";
import { researcherView } from "../workspace/views.js";
import { buildBrief } from "./brief.js";
import { MODEL_FLAG, researcherFields } from "./fields.js";
import type { ResearcherConfig } from "./index.js";
import type { ProposalRequest, ProposalResult, Researcher, ResearcherKind } from "./researcher.js";
import { runCaptured, tail, titleAndHypothesis } from "./spawn.js";

const CLOSING = `Make ONE experiment: edit the editable files in the current folder directly. Do not run
the program and do not commit: the harness commits, runs and judges your change. When you are
done, end your reply with exactly these two lines:
TITLE: <what changed, under 80 characters>
HYPOTHESIS: <why it should improve the metric, one sentence>`;

/**
 * Claude Code needs no approval for edits in acceptEdits mode, which (unlike bypassing
 * permissions) it allows as root; only file tools are allowed, so it can read and edit the
 * worktree it runs in but not run commands. The harness enforces the editable globs itself.
 */
export const CLAUDE_TOOLS = "Read,Edit,MultiEdit,Write,Glob,Grep,LS";

/** The exact command line of each agent; the prompt goes on stdin (it may exceed argv's limit). */
export function agentArgs(
  kind: "claude-code" | "codex",
  config: ResearcherConfig,
  worktree: string,
  lastMessage: string,
): string[] {
  const model = config.model ? ["--model", config.model] : [];
  if (kind === "claude-code")
    return [
      "-p",
      "--output-format",
      "json",
      "--permission-mode",
      "acceptEdits",
      "--allowedTools",
      CLAUDE_TOOLS,
      "--max-turns",
      String(config.maxTurns),
      ...model,
      ...config.args,
    ];
  // workspace-write: codex may write only inside --cd; exec never asks for approval.
  return [
    "exec",
    "--sandbox",
    "workspace-write",
    "--skip-git-repo-check",
    "--ephemeral",
    "--cd",
    worktree,
    "--output-last-message",
    lastMessage,
    ...model,
    ...config.args,
    "-",
  ];
}

/**
 * A coding-agent CLI (`claude -p` or `codex exec`) as researcher: it runs in the trial's
 * worktree with the brief as its prompt and edits files there; the harness collects the
 * edits as the proposal.
 */
export function createCodingAgentResearcher(
  kind: "claude-code" | "codex",
  config: ResearcherConfig,
): Researcher {
  const binary = kind === "claude-code" ? "claude" : "codex";
  return {
    name: kind,
    async propose(request: ProposalRequest): Promise<ProposalResult> {
      const brief = await buildBrief(request, CLOSING);
      const scratch = mkdtempSync(join(tmpdir(), "autoresearch-agent-"));
      const lastMessage = join(scratch, "last-message.txt");
      try {
        const run = await runCaptured(
          binary,
          agentArgs(kind, config, request.worktree, lastMessage),
          {
            cwd: request.worktree,
            input: `${brief.system}\n\n${brief.prompt}`,
            timeoutMs: config.timeout * 1000,
            signal: request.signal,
            sandbox:
              request.sandbox?.kind === "bwrap"
                ? {
                    sandbox: request.sandbox,
                    view: researcherView(
                      request.task.root,
                      request.worktree,
                      agentBinds(kind, config),
                      [scratch],
                    ),
                  }
                : null,
          },
        );
        if (run.spawnError)
          return {
            ok: false,
            fatal: true,
            reason: `cannot run ${binary}: ${run.spawnError}. Is it installed and on PATH?`,
          };
        if (run.aborted) return { ok: false, reason: "stopped" };
        if (run.timedOut)
          return {
            ok: false,
            reason: `${binary} did not finish within ${config.timeout}s (researcher.timeout)`,
          };
        if (run.code !== 0)
          return {
            ok: false,
            reason: `${binary} exited with code ${run.code}: ${tail(run.stderr || run.stdout, 5)}`,
          };
        const answer =
          kind === "claude-code"
            ? readClaude(run.stdout, config)
            : readCodex(lastMessage, run.stdout);
        if ("reason" in answer) return { ok: false, reason: answer.reason };
        const parsed = titleAndHypothesis(answer.text);
        if (!parsed)
          return {
            ok: false,
            reason: `${binary} gave an empty answer`,
            ...(answer.usage ? { usage: answer.usage } : {}),
          };
        return {
          ok: true,
          ...parsed,
          ...(answer.usage ? { usage: answer.usage } : {}),
          detail: { agent: kind, answer: answer.text.slice(-4000) },
        };
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    },
  };
}

type Answer = { text: string; usage: ProposalUsage | null } | { reason: string };

/** `claude -p --output-format json` prints one result object with the answer, cost and usage. */
function readClaude(stdout: string, config: ResearcherConfig): Answer {
  let result: Record<string, unknown>;
  try {
    result = JSON.parse(stdout.trim().split("\n").at(-1) ?? "");
  } catch {
    return { reason: `claude printed no JSON result: ${tail(stdout, 3)}` };
  }
  if (
    result.is_error === true ||
    (typeof result.subtype === "string" && result.subtype !== "success")
  )
    return {
      reason: `claude ended with ${String(result.subtype)}: ${String(result.result ?? "").slice(0, 300)}`,
    };
  const usage = (result.usage ?? {}) as Record<string, number>;
  return {
    text: String(result.result ?? ""),
    usage: {
      model: config.model ?? "claude-code",
      tokensIn:
        (usage.input_tokens ?? 0) +
        (usage.cache_read_input_tokens ?? 0) +
        (usage.cache_creation_input_tokens ?? 0),
      tokensOut: usage.output_tokens ?? 0,
      costUsd: typeof result.total_cost_usd === "number" ? result.total_cost_usd : null,
      turns: typeof result.num_turns === "number" ? result.num_turns : 0,
    },
  };
}

/** `codex exec` writes its last message to the --output-last-message file (and stdout). */
function readCodex(lastMessage: string, stdout: string): Answer {
  // The agent wrote it: a link or a FIFO there is not followed (it would read or stall).
  const text = readHead(lastMessage, 1_000_000) ?? stdout;
  return { text, usage: null };
}

const agentSettings = {
  model: researcherFields.model,
  max_turns: researcherFields.max_turns,
  args: researcherFields.args,
  binds: researcherFields.binds,
};

/** Where each agent keeps its login and sessions, bound writable into its sandbox by default. */
const AGENT_HOMES: Record<"claude-code" | "codex", string[]> = {
  "claude-code": ["~/.claude", "~/.claude.json"],
  codex: ["~/.codex"],
};

/** The task file's `researcher.binds`, else the agent's own folders in the home folder. */
function agentBinds(kind: "claude-code" | "codex", config: ResearcherConfig): Bind[] {
  const given = config.binds as Bind[] | null | undefined;
  return given ?? AGENT_HOMES[kind].map((p) => ({ path: expandHome(p), writable: true }));
}

/** The agent's program must be installed before the baseline spends its time. */
function onPath(binary: string, kind: string, env: NodeJS.ProcessEnv): Promise<void> {
  const found = (env.PATH ?? "")
    .split(delimiter)
    .some((dir) => dir && isExecutable(join(dir, binary)));
  if (found) return Promise.resolve();
  return Promise.reject(
    new ResearcherError(
      `--researcher ${kind} runs \`${binary}\`, which is not on PATH: install it and log in, or choose another researcher`,
    ),
  );
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Claude Code (`claude -p`) in the trial's worktree. */
export const claudeCodeResearcher: ResearcherKind = {
  name: "claude-code",
  settings: agentSettings,
  flags: [MODEL_FLAG],
  preflight: (_config, _traffic, env) => onPath("claude", "claude-code", env),
  create: (config) => createCodingAgentResearcher("claude-code", config),
};

/** Codex (`codex exec`) in the trial's worktree. */
export const codexResearcher: ResearcherKind = {
  name: "codex",
  settings: agentSettings,
  flags: [MODEL_FLAG],
  preflight: (_config, _traffic, env) => onPath("codex", "codex", env),
  create: (config) => createCodingAgentResearcher("codex", config),
};
