import type { z } from "zod";
import type { Sandbox } from "../executors/sandbox.js";
import type { ProposalUsage, TrialRow } from "../ledger/types.js";
import type { MetricRules } from "../metrics/spec.js";
import type { KeyedFetch } from "../providers/record.js";
import type { Flag } from "../util/flags.js";
import type { EditRules } from "../workspace/scope.js";
import type { ResearcherConfig } from "./index.js";

/** What a researcher is given to propose one trial. */
/** What researchers read of the task. */
export interface ResearchTask extends EditRules, MetricRules {
  root: string;
  name: string;
  run: string;
  budget: number;
  timeout: number;
  researcher: { historyTokens: number };
}

export interface ProposalRequest {
  task: ResearchTask;
  tag: string;
  /** The number the proposed trial will have. */
  trial: number;
  /** A checkout of the parent commit; the researcher edits files here and nowhere else. */
  worktree: string;
  parent: { commit: string; metric: number | null };
  /** Finished trials of the run, oldest first. */
  history: TrialRow[];
  /**
   * The finished trials on the same parent, by title (the latest of each): what was
   * already tried on it, without a scan of the history. Derived from `history` when absent.
   */
  tried?: ReadonlyMap<string, TrialRow>;
  /** Titles of trials of the run that are running now (in a swarm, on every host). */
  inFlight?: string[];
  /** In a swarm: titles of the changes other hosts run now (in `inFlight` too). */
  runningElsewhere?: ReadonlySet<string>;
  /** In a swarm: titles of the changes other hosts tried on the same parent. */
  triedElsewhere?: ReadonlySet<string>;
  /** In a swarm: the other hosts' latest finished trials, one line each, newest last. */
  elsewhere?: string[];
  /**
   * Set when an earlier trial beat its parent but could not be merged onto the newer
   * incumbent: the researcher re-applies that change in this worktree.
   */
  reconcile?: Reconcile;
  /** Seed for any randomness, so a resumed run proposes the same things. */
  seed: number;
  signal: AbortSignal;
  /** The run's sandbox, for researchers that run programs in the worktree; none when absent. */
  sandbox?: Sandbox;
}

/** A change to re-apply on a newer incumbent. */
export interface Reconcile {
  n: number;
  title: string;
  hypothesis: string;
  /** The change as a patch against its own parent. */
  patch: string;
  /** What its researcher recorded about it (for mutate: the edits by name). */
  detail: unknown;
}

export type ProposalResult =
  | { ok: true; title: string; hypothesis: string; detail?: unknown; usage?: ProposalUsage }
  /** `fatal`: the researcher cannot go on (missing key, rejected credentials); the run stops. */
  | { ok: false; reason: string; fatal?: boolean; detail?: unknown; usage?: ProposalUsage };

/**
 * Proposes the next change.
 * Contract: edits only files inside `request.worktree`; returns the title and hypothesis
 * of what it changed. Failures (no idea, a malformed answer, a refused API call) are
 * returned as `{ ok: false }`, never thrown. The harness, not the researcher, decides
 * whether the edited paths are allowed.
 */
export interface Researcher {
  readonly name: string;
  /**
   * True for researchers that answer at once (mutate): proposing ahead of free slots
   * gains nothing for them and only makes proposals stale.
   */
  readonly instant?: boolean;
  propose(request: ProposalRequest): Promise<ProposalResult>;
  /**
   * Lines for the run's header that say what it will search (the parameters found in the
   * checkout at `root`); throws a ResearcherError when its settings name what is not there.
   */
  prepare?(root: string, task: EditRules & MetricRules): Promise<string[]>;
  /** Ends what it keeps running between proposals (a helper process); called when the session ends. */
  close?(): Promise<void>;
}

/** What the researchers of one session share: recorded or replayed provider traffic. */
export interface SharedTraffic {
  fetch?: KeyedFetch;
  replaying?: boolean;
}

/**
 * One kind of researcher, as the registry in `index.ts` lists it.
 * Contract: `configure` and `create` throw a UsageError for what the operator must fix
 * (a missing model name, command or key) before any trial runs; `create` never calls out.
 */
export interface ResearcherKind {
  readonly name: string;
  /**
   * The fields of the task file's `researcher:` section it reads: shared ones from
   * `researcherFields` (fields.ts), and its own, which no other kind may name.
   */
  readonly settings: z.ZodRawShape;
  /** Flags it adds to `run`. */
  readonly flags: readonly Flag[];
  /** Fills in what the kind derives (a default model) and checks what it needs. */
  configure?(config: ResearcherConfig, file: string): ResearcherConfig;
  /** Refuses a dollar budget it cannot account for (a model without a known price). */
  checkBudget?(config: ResearcherConfig): void;
  create(config: ResearcherConfig, traffic: SharedTraffic, env: NodeJS.ProcessEnv): Researcher;
  /**
   * Checks, before the baseline, that the researcher can work (its provider answers and
   * takes the key, its program is installed); throws a ResearcherError that says how.
   */
  preflight?(
    config: ResearcherConfig,
    traffic: SharedTraffic,
    env: NodeJS.ProcessEnv,
  ): Promise<void>;
}

/** `request.tried`, or the same derived from the history. */
export function triedOnParent(request: ProposalRequest): ReadonlyMap<string, TrialRow> {
  if (request.tried) return request.tried;
  const tried = new Map<string, TrialRow>();
  for (const t of request.history)
    if (t.parentCommit === request.parent.commit && t.title !== null) tried.set(t.title, t);
  return tried;
}
