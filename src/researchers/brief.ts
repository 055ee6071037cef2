import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { TrialRow } from "../ledger/types.js";
import { isRefusal, readTail } from "../util/safe-file.js";
import { formatSeconds } from "../util/units.js";
import { paths, TRIAL_FILES } from "../workspace/layout.js";
import { trackedFiles } from "../workspace/repo.js";
import { EditScope } from "../workspace/scope.js";
import { formatHistory } from "./history.js";
import type { ProposalRequest } from "./researcher.js";

const FILE_LIMIT = 60_000;

/** What every researcher is told: the system prompt and the first message. */
export interface Brief {
  system: string;
  prompt: string;
}

export const SYSTEM_PROMPT = `You are an autonomous research engineer improving a program by experiment.
Each turn of the research loop you propose ONE change to the editable files. The harness
commits it, runs the program for a fixed time budget, reads the metric and keeps the change
only if it beats the incumbent; otherwise it is discarded. You see the results of every
earlier trial. Prefer ideas with a reason behind them, one idea at a time, and simple code:
at equal results the change that removes code wins. Never try to game the metric or touch
the evaluation: protected files are checked after every run and tampering voids the trial.`;

/** The task's own rules, as the researcher needs them. */
function rules(request: ProposalRequest): string {
  const t = request.task;
  const lines = [
    `- Metric: ${t.metric.name}, to ${t.metric.goal}. The incumbent has ${t.metric.name} = ${request.parent.metric ?? "unknown"}.`,
    `- Each trial runs \`${t.run}\` with AR_TIME_BUDGET=${t.budget} (${formatSeconds(t.budget)}); it is killed after ${formatSeconds(t.timeout)}.`,
    `- You may change files matching: ${t.editable.join(", ")}.`,
    `- Never editable: ${[...t.protected, "autoresearch.yaml", t.program].join(", ")}.`,
  ];
  if (t.constraints.length)
    lines.push(`- Constraints (else discarded): ${t.constraints.map((c) => c.text).join("; ")}.`);
  if (t.secondary.length)
    lines.push(`- Also recorded: ${t.secondary.map((s) => s.name).join(", ")}.`);
  return lines.join("\n");
}

async function editableFiles(request: ProposalRequest): Promise<string> {
  const scope = new EditScope(request.task);
  const parts: string[] = [];
  for (const file of await trackedFiles(request.worktree)) {
    if (!scope.isEditable(file)) continue;
    const content = readFileSync(join(request.worktree, file));
    if (content.includes(0)) parts.push(`### ${file}\n(binary, ${content.length} bytes)`);
    else if (content.length > FILE_LIMIT)
      parts.push(
        `### ${file}\n(${content.length} bytes; too long to include, read it with the tools)`,
      );
    else parts.push(`### ${file}\n\`\`\`\n${content.toString("utf8")}\n\`\`\``);
  }
  return parts.join("\n\n");
}

function crashTails(request: ProposalRequest, trials: TrialRow[]): Map<number, string> {
  const tails = new Map<number, string>();
  for (const t of trials
    .filter((x) => x.verdict === "crash" || x.verdict === "timeout")
    .slice(-3)) {
    const log = join(paths.trial(request.task.root, request.tag, t.n), TRIAL_FILES.log);
    const text = readTail(log, 64_000);
    if (text && !isRefusal(text))
      tails.set(t.n, text.text.trimEnd().split("\n").slice(-20).join("\n"));
  }
  return tails;
}

const PATCH_LIMIT = 30_000;

/** An earlier change that beat its parent but conflicts with the newer incumbent. */
function reconcileSection(request: ProposalRequest): string {
  const r = request.reconcile!;
  const patch =
    r.patch.length > PATCH_LIMIT ? `${r.patch.slice(0, PATCH_LIMIT)}\n[... cut]` : r.patch;
  return [
    `Trial #${r.n} ("${r.title}") beat its parent, but another change was kept meanwhile and the two conflict.`,
    `Its hypothesis: ${r.hypothesis}`,
    "Re-apply the same idea to the incumbent's files as they are now, keeping what was kept meanwhile. Its patch against its own parent:",
    `\`\`\`diff\n${patch}\n\`\`\``,
  ].join("\n");
}

/**
 * The brief for one proposal: program.md, the task's rules, the incumbent's editable
 * files, and the run's history compacted to `historyTokens`.
 */
export async function buildBrief(request: ProposalRequest, closing: string): Promise<Brief> {
  const program = join(request.worktree, request.task.program);
  const history = formatHistory(request.history, {
    metric: request.task.metric.name,
    goal: request.task.metric.goal,
    secondary: request.task.secondary.map((s) => s.name).slice(0, 4),
    budgetTokens: request.task.researcher.historyTokens,
    crashTails: crashTails(request, request.history),
    inFlight: request.inFlight,
    ...(request.elsewhere ? { elsewhere: request.elsewhere } : {}),
  });
  const prompt = [
    `# The task: ${request.task.name}`,
    existsSync(program) ? readFileSync(program, "utf8").trim() : "(The task has no program file.)",
    "# Rules",
    rules(request),
    "# The incumbent's editable files",
    await editableFiles(request),
    "# The run so far",
    history,
    ...(request.reconcile ? ["# Re-apply an earlier win", reconcileSection(request)] : []),
    "# Your turn",
    closing,
  ].join("\n\n");
  return { system: SYSTEM_PROMPT, prompt };
}
