/** The values the swarm's database hands back and takes, in the code's own names. */

export type Goal = "minimize" | "maximize";
export type SwarmVerdict =
  | "keep"
  | "discard"
  | "crash"
  | "timeout"
  | "invalid"
  | "tampered"
  | "interrupted";

/** The task every host of a swarm must run, fixed by `init`. */
export interface SwarmTask {
  /** A hash of the task file's text (the caller chooses the hash; equal text, equal hash). */
  taskHash: string;
  /** The task file's text, so that a host with another one is told what differs. */
  taskFile: string;
  metric: string;
  goal: Goal;
}

/** What a host says of itself when it joins. */
export interface HostInfo {
  taskHash: string;
  taskFile: string;
  /** What its replicates run on (GPU model × count, or CPU model): values compare only within it. */
  hardwareClass: string;
  /** The stages it can run (promotion jobs go to hosts that list theirs). */
  stages: readonly string[];
  slots: number;
}

/** A host as the swarm sees it. */
export interface SwarmHost {
  /** Its database role. */
  name: string;
  hardwareClass: string;
  stages: string[];
  slots: number;
  joinedAt: number;
  lastSeen: number;
}

/** A finished trial as a host uploads it. */
export interface TrialUpload {
  /** The host's own name for it, unique on the host: uploading it again changes nothing. */
  uid: string;
  runTag?: string;
  localN?: number;
  title?: string;
  hypothesis?: string;
  diff?: string;
  /** `diffHash(diff)`; computed from `diff` when left out. */
  diffHash?: string;
  paramKey?: string;
  parentCommit?: string;
  commitSha?: string;
  hardwareClass: string;
  verdict: SwarmVerdict;
  /** A measurement of the starting commit on its class, not a proposal. */
  baseline?: boolean;
  /** The judged value of the task's metric (null when none was read). */
  metric: number | null;
  metrics?: Readonly<Record<string, number>>;
  costUsd?: number;
  runMs?: number;
  /** Epoch ms. */
  finishedAt?: number;
  /**
   * A baseline's replicate values: the noise floor its class's other hosts take with the
   * measurement instead of measuring the same code again. Two or more.
   */
  noise?: { seeds: number[]; values: number[] };
}

/** A class's measurement of a commit, by the host that made it. */
export interface Measurement {
  metric: number;
  metrics: Record<string, number>;
  host: string;
  /** Its replicate values, for a baseline measured on two or more seeds. */
  noise: { seeds: number[]; values: number[] } | null;
}

/** A trial as read back from the swarm (any host's); null where the upload left a field out. */
export interface SwarmTrial {
  id: number;
  host: string;
  uid: string;
  runTag: string | null;
  localN: number | null;
  title: string | null;
  hypothesis: string | null;
  /** Null also when read without diffs. */
  diff: string | null;
  diffHash: string | null;
  paramKey: string | null;
  parentCommit: string | null;
  commitSha: string | null;
  hardwareClass: string;
  verdict: SwarmVerdict;
  baseline: boolean;
  metric: number | null;
  metrics: Record<string, number>;
  costUsd: number;
  runMs: number;
  finishedAt: number | null;
  recordedAt: number;
}

/** A hardware class's incumbent; version 0 and no trial when it has none yet. */
export interface Incumbent {
  hardwareClass: string;
  version: number;
  trialId: number | null;
  commitSha: string | null;
  metric: number | null;
  host: string | null;
  updatedAt: number;
}

/** Why a compare-and-swap of an incumbent was refused. */
export type CasRefusal =
  | "stale"
  | "unknown-trial"
  | "other-class"
  | "not-keep"
  | "no-metric"
  | "not-better";

/** The outcome of a compare-and-swap: the new version, or why not and the version now. */
export type CasResult =
  | { ok: true; version: number }
  | { ok: false; reason: CasRefusal; version: number; message: string };

/** The outcome of a claim: held until `expiresAt` (epoch ms), or refused with whose it is. */
export type ClaimResult =
  | { ok: true; id: number; expiresAt: number }
  | {
      ok: false;
      /** `tried`: a finished trial made the same change; `claimed`: a host is running it now. */
      reason: "tried" | "claimed";
      host: string;
      trialId?: number;
      claimId?: number;
      title: string | null;
      /** For the researcher: what matched, on which host. */
      message: string;
    };

/** A claim still in force: what a host is running now. */
export interface InFlight {
  id: number;
  host: string;
  title: string | null;
  diffHash: string | null;
  paramKey: string | null;
  claimedAt: number;
  expiresAt: number;
}
