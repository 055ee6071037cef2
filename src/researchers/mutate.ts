import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mixSeed, Random } from "../util/random.js";
import { trackedFiles } from "../workspace/repo.js";
import { EditScope } from "../workspace/scope.js";
import { type Constant, findConstants } from "./constants.js";
import type { ProposalRequest, ProposalResult, Researcher, ResearcherKind } from "./researcher.js";

const FACTORS = [0.5, 0.7, 0.8, 1.25, 1.4, 2];
const ATTEMPTS = 40;
const MAX_FILE_BYTES = 1_000_000;

interface Edit {
  constant: Constant;
  value: string;
}

/**
 * The built-in researcher without a model: changes one to three constants of the
 * editable files at random (seeded), never repeating a change already tried on the same
 * parent. An honest baseline for LLM researchers, and the default when none is configured.
 */
export function createMutateResearcher(): Researcher {
  // The constants depend only on the parent commit, which changes only on a keep.
  const byParent = new Map<string, Constant[]>();
  return {
    name: "mutate",
    instant: true,
    async propose(request: ProposalRequest): Promise<ProposalResult> {
      let constants = byParent.get(request.parent.commit);
      if (!constants) {
        constants = await editableConstants(request);
        byParent.clear();
        byParent.set(request.parent.commit, constants);
      }
      if (constants.length === 0)
        return {
          ok: false,
          fatal: true,
          reason:
            "mutate found no constants to change in the editable files (UPPER_CASE names assigned a number, a boolean, or a string with a `mutate: a|b` comment)",
        };
      if (request.reconcile) return reapply(request, constants);
      const tried = new Set(
        request.history.filter((t) => t.parentCommit === request.parent.commit).map((t) => t.title),
      );
      const rng = new Random(mixSeed(request.seed, request.trial));
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        const edits = pickEdits(constants, rng);
        if (edits.length === 0) continue;
        const title = edits
          .map((e) => `${e.constant.name} ${e.constant.raw} → ${e.value}`)
          .join("; ");
        if (tried.has(title)) continue;
        apply(request.worktree, edits);
        return {
          ok: true,
          title,
          hypothesis: hypothesis(edits, request.task.metric.name),
          detail: {
            edits: edits.map((e) => ({
              file: e.constant.file,
              name: e.constant.name,
              from: e.constant.raw,
              to: e.value,
            })),
          },
        };
      }
      return { ok: false, reason: `no untried change found in ${ATTEMPTS} attempts` };
    },
  };
}

async function editableConstants(request: ProposalRequest): Promise<Constant[]> {
  const scope = new EditScope(request.task);
  const constants: Constant[] = [];
  for (const file of await trackedFiles(request.worktree)) {
    if (!scope.isEditable(file)) continue;
    const buffer = readFileSync(join(request.worktree, file));
    if (buffer.length > MAX_FILE_BYTES || buffer.includes(0)) continue;
    constants.push(...findConstants(file, buffer.toString("utf8")));
  }
  return constants;
}

function pickEdits(constants: Constant[], rng: Random): Edit[] {
  const roll = rng.next();
  const count = Math.min(constants.length, roll < 0.7 ? 1 : roll < 0.9 ? 2 : 3);
  const pool = [...constants];
  const edits: Edit[] = [];
  while (edits.length < count && pool.length) {
    const constant = pool.splice(rng.int(pool.length), 1)[0]!;
    const value = mutateValue(constant, rng);
    if (value !== null && value !== constant.raw) edits.push({ constant, value });
  }
  return edits;
}

/** A new value written in the same style as the old one, or null if none fits its bounds. */
export function mutateValue(c: Constant, rng: Random): string | null {
  switch (c.kind) {
    case "bool":
      return { True: "False", False: "True", true: "false", false: "true" }[c.raw] ?? null;
    case "choice": {
      const current = c.raw.slice(1, -1);
      const others = c.choices!.filter((x) => x !== current);
      if (!others.length) return null;
      return `${c.raw[0]}${rng.pick(others)}${c.raw[0]}`;
    }
    case "pow2": {
      const exponent = Number(/\d+$/.exec(c.raw)![0]);
      const next = Math.max(0, exponent + (rng.next() < 0.5 ? -1 : 1));
      return within(c, 2 ** next) ? c.raw.replace(/\d+$/, String(next)) : null;
    }
    case "int": {
      const n = Number(c.raw.replaceAll("_", ""));
      const size = Math.abs(n);
      let next: number;
      if (size <= 4) next = n + (rng.next() < 0.5 ? -1 : 1);
      else if ((size & (size - 1)) === 0) next = rng.next() < 0.5 ? n / 2 : n * 2;
      else next = Math.round(n * rng.pick(FACTORS));
      if (n > 0 && next < 1) next = 1;
      if (n >= 0 && next < 0) next = 0;
      return next !== n && within(c, next) ? String(next) : null;
    }
    case "float": {
      const x = Number(c.raw.replaceAll("_", ""));
      const next =
        x === 0 ? rng.pick([1e-4, 1e-3, 1e-2]) : Number((x * rng.pick(FACTORS)).toPrecision(3));
      return within(c, next) ? formatFloat(next, c.raw) : null;
    }
  }
}

function within(c: Constant, value: number): boolean {
  return !c.range || (value >= c.range[0] && value <= c.range[1]);
}

/** Keeps the written style: exponent notation stays, and a float never turns into an int. */
function formatFloat(value: number, like: string): string {
  if (/[eE]/.test(like)) return value.toExponential().replace("e+", "e");
  const text = String(value);
  return /[.eE]/.test(text) ? text : `${text}.0`;
}

function apply(worktree: string, edits: Edit[]): void {
  const byFile = new Map<string, Edit[]>();
  for (const e of edits) byFile.set(e.constant.file, [...(byFile.get(e.constant.file) ?? []), e]);
  for (const [file, fileEdits] of byFile) {
    const path = join(worktree, file);
    const lines = readFileSync(path, "utf8").split("\n");
    for (const { constant: c, value } of fileEdits) {
      const line = lines[c.line]!;
      lines[c.line] = line.slice(0, c.column) + value + line.slice(c.column + c.raw.length);
    }
    writeFileSync(path, lines.join("\n"));
  }
}

/** Re-applies an earlier proposal's edits by constant name on a newer incumbent. */
function reapply(request: ProposalRequest, constants: Constant[]): ProposalResult {
  const earlier =
    (request.reconcile!.detail as { edits?: { name: string; to: string }[] } | null)?.edits ?? [];
  const edits: Edit[] = [];
  for (const e of earlier) {
    const constant = constants.find((c) => c.name === e.name);
    if (constant && constant.raw !== e.to) edits.push({ constant, value: e.to });
  }
  if (edits.length === 0)
    return {
      ok: false,
      reason: `the change of #${request.reconcile!.n} is already in the incumbent`,
    };
  apply(request.worktree, edits);
  return {
    ok: true,
    title: edits.map((e) => `${e.constant.name} ${e.constant.raw} → ${e.value}`).join("; "),
    hypothesis: request.reconcile!.hypothesis,
    detail: {
      edits: edits.map((e) => ({
        file: e.constant.file,
        name: e.constant.name,
        from: e.constant.raw,
        to: e.value,
      })),
    },
  };
}

function hypothesis(edits: Edit[], metric: string): string {
  const parts = edits.map(({ constant: c, value }) => {
    if (c.kind === "bool" || c.kind === "choice") return `${c.name} = ${value}`;
    const up = numeric(value) > numeric(c.raw);
    return `a ${up ? "larger" : "smaller"} ${c.name}`;
  });
  return `${parts.join(" with ")} improves ${metric}`;
}

function numeric(raw: string): number {
  const power = /^2\s*\*\*\s*(\d+)$/.exec(raw);
  return power ? 2 ** Number(power[1]) : Number(raw.replaceAll("_", ""));
}

/** No model, no key, no settings. */
export const mutateResearcher: ResearcherKind = {
  name: "mutate",
  settings: {},
  flags: [],
  create: () => createMutateResearcher(),
};
