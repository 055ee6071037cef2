import { existsSync, mkdirSync, renameSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { UsageError } from "../errors.js";
import { Ledger } from "../ledger/ledger.js";
import type { TrialRow } from "../ledger/types.js";
import type { MetricRules } from "../metrics/spec.js";
import { oneOf, required, text } from "../util/fields.js";
import { git } from "../workspace/git.js";
import { STATE_DIR } from "../workspace/layout.js";
import type { EditRules } from "../workspace/scope.js";
import { researcherFields } from "./fields.js";
import type { ResearcherConfig } from "./index.js";
import {
  applyEdits,
  type Edit,
  edit,
  editsDetail,
  editsTitle,
  reapplyEdits,
} from "./params/files.js";
import { findParams } from "./params/find.js";
import { type Param, paramValue } from "./params/param.js";
import { failureAsResult, paramSearch } from "./params/search.js";
import { anchored, type Dimension, dimensions, type Value } from "./params/space.js";
import {
  type ProposalRequest,
  type ProposalResult,
  type Researcher,
  type ResearcherKind,
  triedOnParent,
} from "./researcher.js";
import { pythonWithOptuna, Study } from "./study.js";

/** Asks per proposal before giving up on finding a configuration not tried yet. */
const ASKS = 20;
/** tune's samplers, as the header and hypotheses name them. */
const SAMPLERS: Record<string, string> = { gp: "GP", tpe: "TPE", cmaes: "CMA-ES" };
/** Finished trials told to a new study at most (the most recent), so a start stays quick. */
const WARM_START = 2000;

type Space = Record<
  string,
  { type: string; low: number; high: number; log: boolean; choices: Value[] }
>;

/** One Optuna study per run, shared by every `tune` researcher of the process. */
interface Shared {
  study: Study;
  /** Trials of the run whose results the study holds. */
  told: Set<string>;
  /** Trials proposed in this process, by trial number: the study trial that asked for them. */
  asked: Map<number, number>;
  /** Finished trials of the runs named by `warm_start`, by `tag#n`. */
  earlier: Map<string, TrialRow>;
  /** The session's last results being told, once for every tune researcher. */
  closing?: Promise<void>;
}

const studies = new Map<string, Promise<Shared>>();

/**
 * The optimizing researcher: an Optuna study (TPE, a Gaussian process or CMA-ES) over the
 * parameters of the editable files. Every finished trial of the run is told to the study
 * (its mean metric over the judge's seeds, or a failure), including trials other
 * researchers proposed and those of earlier sessions, so a resumed run or one after an
 * import starts warm. Each proposal sets every parameter to the sampled value on the
 * incumbent; its title names the ones that changed.
 */
export function createTuneResearcher(config: ResearcherConfig): Researcher {
  const options: StudyOptions = {
    sampler: (config.sampler as string | undefined) ?? "gp",
    python: config.python as string | undefined,
    warmStart: (config.warmStart as string[] | undefined) ?? [],
  };
  const rules = config.params ?? undefined;
  const search = paramSearch(`tune (${SAMPLERS[options.sampler]})`, rules);
  // The dimensions of the run's first commit, whose inferred bounds every proposal uses.
  let base: { commit: string; dims: Dimension[] } | null = null;
  let opened: string | null = null;
  let last: ProposalRequest | null = null;
  return {
    name: "tune",
    instant: true,
    async prepare(root, task) {
      const lines = await search.describe(root, task);
      const earlier = options.warmStart.length ? checkWarmStart(root, task, options.warmStart) : [];
      return [...lines, ...earlier];
    },
    propose: (request) =>
      failureAsResult(async () => {
        const found = await search.dimensions(request);
        if (!found.ok) return found;
        if (request.reconcile) return reapplyEdits(request, found.dimensions);
        const first =
          request.history.find((t) => t.baseline && t.commit)?.commit ?? request.parent.commit;
        if (base?.commit !== first)
          base = {
            commit: first,
            dims: dimensions(await paramsOf(request.worktree, first, found.dimensions), rules)
              .dimensions,
          };
        const dims = anchored(found.dimensions, base.dims);
        opened = storage(request);
        last = request;
        // A helper that died, hung or hit a locked file is started afresh once; the study
        // file holds what was told, so nothing is told twice. A study whose space no longer
        // fits the code (a kept change gave a parameter new choices, or made an integer a
        // float) is set aside and told the run's trials anew in the space of now.
        for (let attempt = 0; ; attempt++) {
          const opening = open(request, options, dims);
          try {
            const shared = await opening;
            await catchUp(shared, request, dims);
            return await ask(shared, request, dims, options.sampler);
          } catch (error) {
            // Set aside by the proposal that ends the helper only: another may have opened
            // the rebuilt study since.
            const ended = await drop(opened, opening);
            if (attempt > 0) throw error;
            if (ended && OTHER_SPACE.test((error as Error).message) && existsSync(opened))
              renameSync(opened, `${opened}.unusable-${Date.now()}`);
          }
        }
      }),
    async close() {
      if (!opened) return;
      if (last) await tellFinished(opened, last).catch(() => {});
      await drop(opened);
    },
  };
}

/**
 * At the session's end, the results of this process's proposals that finished after the
 * last ask (the run's last trials), so that the study of a finished run holds the result of
 * every tune proposal. One interrupted stays open; the next session closes it. Every tune
 * researcher of the session closes at once: the first tells, the others wait for it.
 */
async function tellFinished(path: string, request: ProposalRequest): Promise<void> {
  const shared = await studies.get(path);
  if (!shared) return;
  shared.closing ??= (async () => {
    const ledger = Ledger.open(request.task.root);
    try {
      const run = ledger.run(request.tag);
      for (const [n, number] of [...shared.asked]) {
        const t = run && ledger.trial(run.id, n);
        const result = t ? outcome(t) : null;
        if (!result) continue;
        shared.asked.delete(n);
        shared.told.add(String(n));
        await shared.study.request({ op: "tell", number, trial: String(n), result });
      }
    } finally {
      ledger.close();
    }
  })();
  await shared.closing;
}

/**
 * Ends the helper of a study file, if one runs: `which` only, when given, so that a
 * proposal that failed does not end the helper another one has started since.
 */
async function drop(path: string, which?: Promise<Shared>): Promise<boolean> {
  const shared = studies.get(path);
  if (!shared || (which && shared !== which)) return false;
  studies.delete(path);
  await shared.then((s) => s.study.close()).catch(() => {});
  return true;
}

/** What SQLite and Optuna say of a file that holds no usable study. */
const UNUSABLE = /not a database|malformed|no such table|no such column|alembic|schema/i;
/** What Optuna says of a parameter whose distribution differs from the study's. */
const OTHER_SPACE = /dynamic value space|cannot set different/i;

const storage = (r: ProposalRequest) => join(r.task.root, STATE_DIR, "runs", r.tag, "tune.sqlite3");

interface StudyOptions {
  sampler: string;
  python: string | undefined;
  /** Runs of the task whose finished trials the study is told before its first ask. */
  warmStart: string[];
}

function open(
  request: ProposalRequest,
  { sampler, python, warmStart }: StudyOptions,
  dims: Dimension[],
): Promise<Shared> {
  const path = storage(request);
  let shared = studies.get(path);
  if (!shared) {
    shared = (async () => {
      mkdirSync(join(path, ".."), { recursive: true });
      const study = new Study(await pythonWithOptuna(python, sampler));
      try {
        const opening = {
          op: "open",
          storage: `sqlite:///${path}`,
          study: "tune",
          direction: request.task.metric.goal === "maximize" ? "maximize" : "minimize",
          sampler,
          seed: request.seed,
          x0: startingPoint(dims),
        };
        const answer = await study.request(opening).catch(async (error: Error) => {
          // The study only mirrors the ledger: a file that is not a study any more is set
          // aside (kept for a look) and the study is told the run's trials anew.
          if (!UNUSABLE.test(error.message) || !existsSync(path)) throw error;
          renameSync(path, `${path}.unusable-${Date.now()}`);
          return study.request(opening);
        });
        return {
          study,
          told: new Set((answer.told as unknown[]).map(String)),
          asked: new Map(),
          earlier: earlierTrials(
            request,
            warmStart.filter((t) => t !== request.tag),
          ),
        };
      } catch (error) {
        study.close();
        throw error;
      }
    })();
    studies.set(path, shared);
  }
  return shared;
}

/** What a trial tells the study: its metric, a failure (by verdict), or nothing known. */
type Result = { value: number } | { failed: string } | { unknown: true };

/** The result of a finished trial; null for one interrupted, which tells nothing. */
function outcome(t: TrialRow): Result | null {
  if (t.state !== "done" || t.verdict === "interrupted") return null;
  if ((t.verdict === "keep" || t.verdict === "discard") && t.metric !== null)
    return { value: t.metric };
  return { failed: t.verdict ?? "failed" };
}

/**
 * Tells the study every finished trial it does not hold yet: the run's own (by number),
 * then those of the runs it was warm-started from (by `tag#n`).
 */
async function catchUp(shared: Shared, request: ProposalRequest, dims: Dimension[]): Promise<void> {
  const space = spaceOf(dims);
  const fresh: [string, TrialRow][] = [
    ...[...shared.earlier].filter(([id]) => !shared.told.has(id)),
    ...request.history
      .filter((t) => t.state === "done" && !shared.told.has(String(t.n)))
      .map((t): [string, TrialRow] => [String(t.n), t]),
  ];
  for (const [id, t] of fresh.slice(-WARM_START)) {
    // Another tune researcher of the session may have told it while this one waited.
    if (shared.told.has(id)) continue;
    shared.told.add(id);
    const result = outcome(t);
    const number = id === String(t.n) ? shared.asked.get(t.n) : undefined;
    if (number !== undefined) {
      shared.asked.delete(t.n);
      // An interrupted trial's proposal is closed as unknown: it must not stay in flight.
      await shared.study.request({
        op: "tell",
        number,
        trial: id,
        result: result ?? { unknown: true },
      });
    } else if (result && t.commit) {
      const params = await paramsAt(request.worktree, t.commit, dims);
      // A commit not in this repository (an imported run's) tells nothing.
      if (Object.keys(params).length === 0) continue;
      await shared.study.request({ op: "add", trial: id, space, params, result });
    }
  }
}

/**
 * The header line for `warm_start`; refuses a run that is not in the ledger or measured
 * another metric, whose values would mislead the study.
 */
function checkWarmStart(root: string, task: EditRules & MetricRules, tags: string[]): string[] {
  const ledger = Ledger.open(root);
  try {
    const counts = tags.map((tag) => {
      const run = ledger.run(tag);
      if (!run)
        throw new UsageError(
          `--warm-start: no run "${tag}" in this task's ledger; runs: ${
            ledger
              .runs()
              .map((r) => r.tag)
              .join(", ") || "none"
          }`,
        );
      if (run.metric !== task.metric.name || run.goal !== task.metric.goal)
        throw new UsageError(
          `--warm-start: run "${tag}" measured ${run.metric} (${run.goal}), not ${task.metric.name} (${task.metric.goal})`,
        );
      return `${tag} (${ledger.trials(run.id).filter((t) => t.state === "done").length} trials)`;
    });
    return [`tune: warm start from ${counts.join(", ")}`];
  } finally {
    ledger.close();
  }
}

/** The finished trials of the runs `tags` of the task's ledger, by `tag#n`. */
function earlierTrials(request: ProposalRequest, tags: string[]): Map<string, TrialRow> {
  const found = new Map<string, TrialRow>();
  if (!tags.length) return found;
  const ledger = Ledger.open(request.task.root);
  try {
    for (const tag of tags) {
      const run = ledger.run(tag);
      if (!run) continue;
      for (const t of ledger.trials(run.id)) if (t.state === "done") found.set(`${tag}#${t.n}`, t);
    }
  } finally {
    ledger.close();
  }
  return found;
}

/** The parameters of the files of `dims` as they are in `commit`. */
async function paramsOf(dir: string, commit: string, dims: Dimension[]): Promise<Param[]> {
  const params: Param[] = [];
  for (const file of new Set(dims.map((d) => d.param.file))) {
    const text = await git(dir, ["show", `${commit}:${file}`]).catch(() => null);
    if (text !== null) params.push(...(await findParams(file, text)));
  }
  return params;
}

/** The dimensions' values in the files of `commit`, as the study names and scales them. */
async function paramsAt(
  dir: string,
  commit: string,
  dims: Dimension[],
): Promise<Record<string, Value>> {
  const params = await paramsOf(dir, commit, dims);
  const out: Record<string, Value> = {};
  for (const d of dims) {
    const p = params.findLast((x) => x.file === d.param.file && x.name === d.param.name);
    if (p && p.kind === d.param.kind) out[d.key] = studyValue(d, paramValue(p));
  }
  return out;
}

/** The incumbent's numeric values, inside their bounds: where CMA-ES starts. */
function startingPoint(dims: Dimension[]): Record<string, number> {
  const x0: Record<string, number> = {};
  for (const d of dims) {
    if (d.type === "choice") continue;
    const value = Number(studyValue(d, paramValue(d.param)));
    x0[d.key] = Math.min(d.high, Math.max(d.low, value));
  }
  return x0;
}

/** A value as the study holds it: the exponent of a power of two, else the value. */
function studyValue(d: Dimension, value: Value): Value {
  return d.param.kind === "pow2" && d.type === "int" ? Math.round(Math.log2(Number(value))) : value;
}

function spaceOf(dims: Dimension[]): Space {
  return Object.fromEntries(
    dims.map((d) => [
      d.key,
      { type: d.type, low: d.low, high: d.high, log: d.log, choices: d.choices },
    ]),
  );
}

async function ask(
  shared: Shared,
  request: ProposalRequest,
  dims: Dimension[],
  sampler: string,
): Promise<ProposalResult> {
  const space = spaceOf(dims);
  const tried = triedOnParent(request);
  for (let attempt = 0; attempt < ASKS; attempt++) {
    const answer = await shared.study.request({ op: "ask", for: request.trial, space });
    const number = answer.number as number;
    const params = answer.params as Record<string, Value>;
    const edits: Edit[] = [];
    for (const d of dims) {
      if (!(d.key in params)) continue;
      const sampled = params[d.key]!;
      const value =
        d.param.kind === "pow2" && d.type === "int"
          ? 2 ** Number(sampled)
          : typeof sampled === "number" && d.type === "float"
            ? readable(d, sampled)
            : sampled;
      const e = edit(d, value);
      if (e.raw !== d.param.raw) edits.push(e);
    }
    const title = editsTitle(edits);
    // The incumbent itself, or a change already measured on it: the study learns the
    // known result and is asked again, so no GPU time goes to a repeat.
    const earlier = edits.length ? tried.get(title) : null;
    // Running now (another tune researcher's): its result is not known yet; the sample is
    // closed as unknown, which the samplers leave out, and the study is asked again.
    if (edits.length && request.inFlight?.includes(title)) {
      await shared.study.request({ op: "tell", number, result: { unknown: true } });
      continue;
    }
    const known =
      edits.length === 0 ? parentOutcome(request) : earlier ? outcome(earlier) : undefined;
    if (known !== undefined) {
      await shared.study.request({
        op: "tell",
        number,
        result: known ?? { unknown: true },
      });
      continue;
    }
    applyEdits(request.worktree, edits);
    shared.asked.set(request.trial, number);
    return {
      ok: true,
      title,
      hypothesis: `${SAMPLERS[sampler]} suggests ${edits.map((e) => `${e.dimension.key} = ${e.raw}`).join(", ")} improves ${request.task.metric.name}`,
      detail: { edits: editsDetail(edits), study: number },
    };
  }
  return {
    ok: false,
    reason: `tune found no untried configuration in ${ASKS} asks: its ${dims.length} parameter(s) may have no value left to try on this incumbent; name more in researcher.params`,
  };
}

/**
 * A sampled float as it is written: four significant digits on a log scale, a
 * ten-thousandth of the range on a linear one, never outside the range.
 */
export function readable(d: Dimension, x: number): number {
  const step = 10 ** Math.floor(Math.log10((d.high - d.low) / 10_000));
  const rounded = d.log
    ? Number(x.toPrecision(4))
    : Number((Math.round(x / step) * step).toPrecision(12));
  return Math.min(d.high, Math.max(d.low, rounded));
}

/** The parent's own result, for a sample that changes nothing. */
function parentOutcome(request: ProposalRequest): Result | null {
  return request.parent.metric === null ? null : { value: request.parent.metric };
}

/** Optuna through Debian's python3-optuna or pip's; checked before the baseline. */
export const tuneResearcher: ResearcherKind = {
  name: "tune",
  settings: {
    params: researcherFields.params,
    sampler: oneOf(["gp", "tpe", "cmaes"]).default("gp"),
    python: text("the Python that has Optuna").optional(),
    warm_start: z.array(text("a run's tag"), { error: required("a list of run tags") }).optional(),
  },
  flags: [
    { flags: "--sampler <name>", description: "tune's sampler: gp (default), tpe or cmaes" },
    {
      flags: "--warm-start <tags>",
      description: "tune learns first from these runs of the task (comma-separated tags)",
    },
  ],
  configure: (config, file) => {
    if (config.sampler !== undefined && !Object.hasOwn(SAMPLERS, String(config.sampler)))
      throw new UsageError(`--sampler: unknown sampler "${config.sampler}"; use gp, tpe or cmaes`);
    // A relative `python` in the task file is the task's, not the current folder's.
    const python = config.python as string | undefined;
    if (python?.includes("/") && !isAbsolute(python))
      config = { ...config, python: resolve(dirname(file), python) };
    const warm = config.warmStart;
    return typeof warm === "string"
      ? {
          ...config,
          warmStart: warm
            .split(",")
            .map((t) => t.trim())
            .filter(Boolean),
        }
      : config;
  },
  preflight: async (config) => {
    await pythonWithOptuna(config.python as string | undefined, (config.sampler as string) ?? "gp");
  },
  create: (config) => createTuneResearcher(config),
};
