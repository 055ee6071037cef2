import { mixSeed, Random } from "../util/random.js";
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
import { paramValue } from "./params/param.js";
import { failureAsResult, type ParamSearch, paramSearch } from "./params/search.js";
import type { Dimension, Value } from "./params/space.js";
import {
  type ProposalRequest,
  type ProposalResult,
  type Researcher,
  type ResearcherKind,
  triedOnParent,
} from "./researcher.js";

const FACTORS = [0.5, 0.7, 0.8, 1.25, 1.4, 2];
const ATTEMPTS = 40;

/**
 * The built-in researcher without a model: changes one to three parameters of the
 * editable files at random (seeded), never repeating a change already tried on the same
 * parent (by any host of a swarm). An honest baseline for LLM researchers, and the default when none is configured.
 */
export function createMutateResearcher(config?: Pick<ResearcherConfig, "params">): Researcher {
  const search: ParamSearch = paramSearch("mutate", config?.params ?? undefined);
  return {
    name: "mutate",
    instant: true,
    prepare: search.describe,
    async propose(request: ProposalRequest): Promise<ProposalResult> {
      return failureAsResult(() => proposeMutation(request));
    },
  };

  async function proposeMutation(request: ProposalRequest): Promise<ProposalResult> {
    const found = await search.dimensions(request);
    if (!found.ok) return found;
    const dims = found.dimensions;
    if (request.reconcile) return reapplyEdits(request, dims);
    const tried = triedOnParent(request);
    // Trials proposed ahead (lookahead, overlap) run beside this one: not the same change twice.
    const running = new Set(request.inFlight ?? []);
    const rng = new Random(mixSeed(request.seed, request.trial));
    for (let attempt = 0; attempt < 2 * ATTEMPTS; attempt++) {
      const edits = pickEdits(dims, rng);
      if (edits.length === 0) continue;
      const title = editsTitle(edits);
      if (tried.has(title) || request.triedElsewhere?.has(title)) continue;
      // Another host's running change may still end unfinished: when nothing else is left,
      // it is made again here, and the swarm's claim decides (a discard, not a failure).
      const elsewhere = request.runningElsewhere?.has(title) ?? false;
      if (running.has(title) && (!elsewhere || attempt < ATTEMPTS)) continue;
      applyEdits(request.worktree, edits);
      return {
        ok: true,
        title,
        hypothesis: hypothesis(edits, request.task.metric.name),
        detail: { edits: editsDetail(edits) },
      };
    }
    return {
      ok: false,
      reason: `no untried change found in ${ATTEMPTS} attempts: its ${dims.length} parameter(s) may have no value left to try on this incumbent; name more in researcher.params, or widen their ranges`,
    };
  }
}

function pickEdits(dims: Dimension[], rng: Random): Edit[] {
  const roll = rng.next();
  const count = Math.min(dims.length, roll < 0.7 ? 1 : roll < 0.9 ? 2 : 3);
  const pool = [...dims];
  const edits: Edit[] = [];
  while (edits.length < count && pool.length) {
    const d = pool.splice(rng.int(pool.length), 1)[0]!;
    const value = mutateValue(d, rng);
    if (value !== null) {
      const e = edit(d, value);
      if (e.raw !== d.param.raw) edits.push(e);
    }
  }
  return edits;
}

/** A new value near the current one, within the dimension's bounds, or null if none fits. */
export function mutateValue(d: Dimension, rng: Random): Value | null {
  const current = paramValue(d.param);
  if (d.type === "choice") {
    const others = d.choices.filter((x) => String(x) !== String(current));
    return others.length ? rng.pick(others) : null;
  }
  const within = (x: number) => x >= d.low && x <= d.high;
  const n = current as number;
  if (d.param.kind === "pow2") {
    const exponent = Math.round(Math.log2(n)) + (rng.next() < 0.5 ? -1 : 1);
    return exponent >= 0 && within(exponent) ? 2 ** exponent : null;
  }
  if (d.type === "int") {
    const size = Math.abs(n);
    let next: number;
    if (size <= 4) next = n + (rng.next() < 0.5 ? -1 : 1);
    else if ((size & (size - 1)) === 0) next = rng.next() < 0.5 ? n / 2 : n * 2;
    else next = Math.round(n * rng.pick(FACTORS));
    if (n > 0 && next < 1) next = 1;
    if (n >= 0 && next < 0) next = 0;
    return next !== n && within(next) ? next : null;
  }
  // From zero, a step of a tenth or a hundredth of the range; back to zero, now and then.
  if (n === 0) return Number((rng.pick([0.01, 0.1]) * (d.high > 0 ? d.high : 1)).toPrecision(3));
  if (d.low === 0 && rng.next() < 1 / 6) return 0;
  const next = Number((n * rng.pick(FACTORS)).toPrecision(3));
  return within(next) ? next : null;
}

function hypothesis(edits: Edit[], metric: string): string {
  const parts = edits.map(({ dimension: d, raw, value }) => {
    if (d.type === "choice") return `${d.key} = ${raw}`;
    const up = Number(value) > Number(paramValue(d.param));
    return `a ${up ? "larger" : "smaller"} ${d.key}`;
  });
  return `${parts.join(" with ")} improves ${metric}`;
}

/** No model, no key; `researcher.params` picks and bounds the parameters it changes. */
export const mutateResearcher: ResearcherKind = {
  name: "mutate",
  settings: { params: researcherFields.params },
  flags: [],
  create: (config) => createMutateResearcher(config),
};
