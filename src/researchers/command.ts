import { statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, resolve } from "node:path";
import { UsageError } from "../errors.js";
import type { Bind } from "../executors/sandbox.js";
import type { ProposalUsage } from "../ledger/types.js";
import { expandHome } from "../util/fs.js";
import { researcherView } from "../workspace/views.js";
import { buildBrief } from "./brief.js";
import { researcherFields } from "./fields.js";
import type { ResearcherConfig } from "./index.js";
import type { ProposalRequest, ProposalResult, Researcher, ResearcherKind } from "./researcher.js";
import { runCaptured, tail, titleAndHypothesis } from "./spawn.js";

const CLOSING =
  'Edit the editable files in the current folder, then print a JSON line {"title": ..., "hypothesis": ...}.';

/**
 * Any program as researcher: it gets the brief and the run's context as JSON on stdin,
 * runs in the trial's worktree (the current folder) and edits files there. Its last
 * stdout line is JSON `{ "title", "hypothesis", "usage"? }`, or it prints TITLE: and
 * HYPOTHESIS: lines.
 */
export function createCommandResearcher(config: ResearcherConfig): Researcher {
  const command = config.command!;
  return {
    name: "command",
    async propose(request: ProposalRequest): Promise<ProposalResult> {
      const brief = await buildBrief(request, CLOSING);
      const input = JSON.stringify({
        task: {
          name: request.task.name,
          metric: request.task.metric,
          budget: request.task.budget,
          editable: request.task.editable,
          protected: request.task.protected,
          constraints: request.task.constraints.map((c) => c.text),
        },
        tag: request.tag,
        trial: request.trial,
        worktree: request.worktree,
        parent: request.parent,
        seed: request.seed,
        brief: `${brief.system}\n\n${brief.prompt}`,
        history: request.history.map((t) => ({
          n: t.n,
          title: t.title,
          hypothesis: t.hypothesis,
          verdict: t.verdict,
          reason: t.reason,
          metric: t.metric,
          metrics: t.metrics,
          commit: t.commit,
          parent: t.parentCommit,
        })),
      });
      const run = await runCaptured("/bin/sh", ["-c", command], {
        cwd: request.worktree,
        input,
        timeoutMs: config.timeout * 1000,
        signal: request.signal,
        sandbox:
          request.sandbox?.kind === "bwrap"
            ? {
                sandbox: request.sandbox,
                view: researcherView(request.task.root, request.worktree, [
                  ...namedFolders(command),
                  ...((config.binds as Bind[] | null | undefined) ?? []),
                ]),
              }
            : null,
      });
      if (run.aborted) return { ok: false, reason: "stopped" };
      if (run.timedOut)
        return { ok: false, reason: `the command did not finish within ${config.timeout}s` };
      if (run.code !== 0)
        return {
          ok: false,
          reason: `the command exited with code ${run.code}: ${tail(run.stderr || run.stdout, 5)}`,
        };
      const last = run.stdout.trim().split("\n").at(-1) ?? "";
      try {
        const answer = JSON.parse(last) as {
          title?: unknown;
          hypothesis?: unknown;
          usage?: Record<string, unknown>;
        };
        if (typeof answer.title !== "string" || !answer.title.trim())
          return { ok: false, reason: 'the command\'s JSON answer has no "title"' };
        const usage = readUsage(answer.usage);
        return {
          ok: true,
          title: answer.title.trim(),
          hypothesis: String(answer.hypothesis ?? ""),
          ...(usage ? { usage } : {}),
        };
      } catch {
        const parsed = titleAndHypothesis(run.stdout);
        return parsed
          ? { ok: true, ...parsed }
          : { ok: false, reason: "the command printed no title" };
      }
    },
  };
}

function readUsage(u: Record<string, unknown> | undefined): ProposalUsage | null {
  if (!u) return null;
  const n = (x: unknown) => (typeof x === "number" ? x : 0);
  return {
    model: typeof u.model === "string" ? u.model : "command",
    tokensIn: n(u.tokens_in),
    tokensOut: n(u.tokens_out),
    costUsd: typeof u.cost_usd === "number" ? u.cost_usd : null,
    turns: n(u.turns),
  };
}

/**
 * The folders of the absolute paths the command names (its script in /tmp or the home
 * folder, say), readable in the sandbox: what the user wrote must keep working.
 */
function namedFolders(command: string): Bind[] {
  const folders = new Set<string>();
  for (const word of command.split(/[\s'"=:;|&()<>]+/)) {
    if (!word.startsWith("~/") && !isAbsolute(word)) continue;
    const path = resolve(expandHome(word));
    try {
      // A script directly in $HOME or /tmp shows alone, not all that is beside it, and
      // those folders themselves never show whole.
      const whole = [homedir(), "/tmp", "/"];
      const isFolder = statSync(path).isDirectory();
      if (isFolder && whole.includes(path)) continue;
      const folder = isFolder ? path : dirname(path);
      folders.add(whole.includes(folder) ? path : folder);
    } catch {}
  }
  return [...folders].map((path) => ({ path, writable: false }));
}

/** Any program, from `researcher.command`. */
export const commandResearcher: ResearcherKind = {
  name: "command",
  settings: { command: researcherFields.command, binds: researcherFields.binds },
  flags: [],
  configure(config, file) {
    if (!config.command)
      throw new UsageError(`${file}: researcher.command: is required for the command researcher`);
    return config;
  },
  create: (config) => createCommandResearcher(config),
};
