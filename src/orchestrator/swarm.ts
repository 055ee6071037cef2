import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpus } from "node:os";
import { join } from "node:path";
import { StoppedError, SwarmError } from "../errors.js";
import type { Ledger } from "../ledger/ledger.js";
import { ADOPTER, type NoiseFloor, type RunRow, type TrialRow } from "../ledger/types.js";
import {
  answeredBeforeStop,
  type ClaimResult,
  diffHash,
  type IncumbentWatch,
  type InFlight,
  isUnreachable,
  type LineHead,
  type Measurement,
  type PromotionEnd,
  type PromotionJob,
  type PromotionRule,
  redactUrl,
  refuseOtherTask,
  retry,
  SwarmClient,
  type SwarmTrial,
  SwarmUnreachableError,
  type SwarmVerdict,
  type TrialUpload,
} from "../swarm/index.js";
import type { Task } from "../task/task.js";
import { monotonic, pause, settlesWithin } from "../util/clock.js";
import { readHead } from "../util/safe-file.js";
import { git } from "../workspace/git.js";
import { paths, TRIAL_FILES } from "../workspace/layout.js";
import type { Emit } from "./events.js";

/** How long a claim holds without renewal: a killed host's claims lapse after this. */
const LEASE_S = 300;
/** How often a host waiting for another's measurement (a baseline, a head) looks for it. */
const MEASUREMENT_POLL_MS = 1_000;
/** A push or fetch that has not ended by then is ended and tried again: the remote hung. */
const REMOTE_TIMEOUT_MS = 5 * 60_000;

/** What git says when the remote answered and refused (not worth asking again). */
const REFUSED =
  /authentication failed|permission denied|could not read username|access denied|\[rejected\]|\[remote rejected\]|does not appear to be a git repository|repository not found|returned error: 40[134]/i;

/** How the reason of a trial refused by its claim begins. */
export const NOT_RUN = "not run: ";

/** How many of the other hosts' latest trials a brief shows. */
const RECENT = 30;
/** The longest a closing host waits to say it left: a stop is not held for the database. */
const LEAVE_MS = 2_000;
/**
 * How long a keep's line move waits for the database once the run has reached its limit:
 * the run ends then, as it would without a swarm, and `resume` makes the move.
 */
export const AT_LIMIT_WAIT_MS = 10_000;

/**
 * The swarm's git remote did not take a push before the run's stop, or soon after its
 * limit: a passing outage, as the database's is, which `resume` settles.
 */
export class RemoteUnreachableError extends SwarmUnreachableError {}

/** Aborts once `atLimit` has held for AT_LIMIT_WAIT_MS (looked at twice a second). */
function abortAtLimit(atLimit: () => boolean): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  let since: number | null = null;
  const timer = setInterval(() => {
    if (atLimit()) since ??= monotonic();
    if (since !== null && monotonic() - since >= AT_LIMIT_WAIT_MS) controller.abort();
  }, 500);
  timer.unref();
  return { signal: controller.signal, clear: () => clearInterval(timer) };
}

/** A wait on the database at the run's limit: when it ends, and a signal that aborts then. */
interface LimitWait {
  until: number;
  over: AbortSignal;
}

/** What `run --swarm` is given. */
export interface SwarmChoice {
  /** postgres://role:password@host/db; the password may come from PGPASSWORD or ~/.pgpass. */
  url: string;
  /** This host's hardware class; detected when left out. */
  hardwareClass?: string;
  /** The git remote as this host reaches it, when not the one `swarm init` recorded. */
  remote?: string;
  /** The task's stages this host can run (promotions go to such hosts); all when left out. */
  stages?: string[];
}

/** What the task file says of promotions: to its second stage, every `promote_every`; or never. */
export function promotionRule(task: Task): PromotionRule | null {
  return task.promoteEvery && task.stages.length > 1
    ? { stage: task.stages[1]!.name, every: task.promoteEvery }
    : null;
}

/** What a join that a stop (Ctrl-C) cut short ends with, once what it made is undone. */
export const joinStopped = (url: string) =>
  new StoppedError(
    `stopped while joining the swarm at ${redactUrl(url)}: this task recorded nothing (the swarm may list this host until its heartbeat ages out); run the same command again to join`,
  );

/** The task file's hash: every host of a swarm runs the same one. */
export const taskHash = (text: string) => createHash("sha256").update(text).digest("hex");

/** Where a host's trial commit lives on the swarm's remote. */
export const remoteRef = (host: string, tag: string, n: number) =>
  `refs/autoresearch-swarm/${host}/${tag}/${n}`;

/**
 * What replicates run on, so that values are compared only within it: the GPU model ×
 * the GPUs a replicate uses, or the CPU model.
 */
export function detectHardwareClass(gpusPerReplicate: number): string {
  if (gpusPerReplicate > 0) {
    try {
      const names = execFileSync("nvidia-smi", ["--query-gpu=name", "--format=csv,noheader"], {
        encoding: "utf8",
      })
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean);
      if (names[0]) return `${names[0]} x${gpusPerReplicate}`;
    } catch {
      // No nvidia-smi: the CPU names the class below.
    }
  }
  return `cpu ${cpus()[0]?.model.trim() ?? "unknown"}`;
}

/**
 * Wins the line refused that no trial has carried onto a newer head yet: an earlier session
 * stopped before it adopted that head.
 */
export function pendingCarries(ledger: Ledger, runId: number): TrialRow[] {
  const carried = new Set(ledger.trials(runId).flatMap((t) => t.rebaseOf ?? []));
  const pending = new Map<number, TrialRow>();
  for (const e of ledger.events(runId, "carry")) {
    const trial = e.trialId === null ? null : ledger.trialById(e.trialId);
    if (trial && !carried.has(trial.n)) pending.set(trial.id, trial);
  }
  return [...pending.values()];
}

/** The promotions a host holds, each with a signal that aborts when its lease is lost. */
export class HeldPromotions {
  private readonly held = new Map<number, AbortController>();

  take(id: number): AbortSignal {
    const held = new AbortController();
    this.held.set(id, held);
    return held.signal;
  }

  /** The promotion's signal; an aborted one for a promotion not (or no longer) held. */
  signal(id: number): AbortSignal {
    return this.held.get(id)?.signal ?? AbortSignal.abort(LEASE_LOST);
  }

  drop(id: number): void {
    this.held.delete(id);
  }

  /**
   * Renews every lease; a promotion whose renewal is refused (another host took it once
   * its lease lapsed) is dropped and its signal aborted. Returns the ids lost. A renewal
   * that fails (the database away) keeps the promotion, and so does a lapsed lease that
   * no one took: the database renews it.
   */
  async renew(renewOne: (id: number) => Promise<boolean>): Promise<number[]> {
    const lost: number[] = [];
    for (const [id, held] of [...this.held]) {
      // Ended or handed back while its renewal was on the way: refused, and rightly so.
      if ((await renewOne(id)) || this.held.get(id) !== held) continue;
      this.held.delete(id);
      held.abort(LEASE_LOST);
      lost.push(id);
    }
    return lost;
  }
}

/** Why a promotion stopped when its lease was lost (the signal's reason). */
export const LEASE_LOST = "its lease lapsed and another host took it";

/**
 * One run's part in a swarm: it joins, claims each change before running it, pushes
 * every trial's commit to the remote and uploads every finished trial (exactly once, also
 * after a lost connection: what is not uploaded when the run ends is uploaded by the next
 * `resume`), moves the line on a keep, and tells the loop when another host's keep must
 * be adopted. The host's own ledger stays complete whatever the database does.
 */
export class SwarmLink {
  private head: LineHead;
  private readonly claims = new Map<number, number>();
  private readonly uploads: number[] = [];
  private uploading: Promise<void> | null = null;
  private others: InFlight[] = [];
  private latest: string[] = [];
  /** Titles of the other hosts' trials, by their parent commit. */
  private readonly triedOn = new Map<string, Set<string>>();
  private cursor: string | undefined;
  private wake: (() => void) | null = null;
  private readonly closing = new AbortController();
  private readonly timers: NodeJS.Timeout[] = [];
  /** The background rounds (heartbeat, reads) in flight. */
  private readonly rounds = new Set<Promise<void>>();
  /** The database did not answer the last time it was asked: no leave is tried on close. */
  private lost = false;
  private watch: IncumbentWatch | null = null;
  /** Heads whose adoption failed here: not tried again in this process. */
  private readonly failed = new Set<number>();
  /** Why the run must stop, found in the background (the remote refused a push). */
  failure: string | null = null;
  /**
   * Set while the baseline, or an adoption, waits for a class-mate's measurement of its
   * commit: it holds no slot then, so the loop begins trials beside it.
   */
  awaitingMeasurement = false;
  /** Keeps the line refused (another host's keep came first), to carry onto the new head. */
  readonly carries: TrialRow[] = [];
  /**
   * Trials whose part in the swarm did not happen before the run's limit or stop, by
   * number: a keep's push and line move (the remote or the database away), an adoption's
   * fetch (the remote away). `resume` does what is left; they count toward --max-trials,
   * as they will once settled.
   */
  readonly leftToResume = new Set<number>();
  /**
   * Once the run has reached its limit, every wait on the database ends AT_LIMIT_WAIT_MS
   * after the first call it left unanswered began (each attempt cut then, not at the
   * connection's 30 s query timeout), so that the run ends when its notice says: the
   * keep's line move, the head read after it, and the close's uploads share it. Null
   * while the database answers.
   */
  private limitWait: LimitWait | null = null;
  /** Promotions this host holds (their leases are renewed with the heartbeat). */
  private readonly heldJobs = new HeldPromotions();
  /** Why this host takes no promotion any more (the database refused it), once said. */
  private promotionsOff: string | null = null;

  private constructor(
    private readonly client: SwarmClient,
    private readonly ledger: Ledger,
    private readonly run: RunRow,
    private readonly root: string,
    readonly host: string,
    readonly hardwareClass: string,
    readonly remote: string,
    head: LineHead,
    private readonly emit: Emit,
    private readonly signal: AbortSignal,
    /** The stages this host can run; promotions to the others go to other hosts. */
    readonly stages: readonly string[],
    /** Every how many line versions the head is promoted, and to which stage; null: never. */
    private readonly promotion: PromotionRule | null,
  ) {
    this.head = head;
  }

  /**
   * Connects, checks the task and joins. A stop (`signal`) is not held for a database that
   * does not answer: the join fails with SwarmUnreachableError a moment after it.
   */
  static async open(options: {
    choice: SwarmChoice;
    root: string;
    taskFile: string;
    ledger: Ledger;
    run: RunRow;
    slots: number;
    gpusPerReplicate: number;
    /** The stages this host can run. */
    stages: string[];
    promotion: PromotionRule | null;
    emit: Emit;
    signal: AbortSignal;
  }): Promise<SwarmLink> {
    const { choice, signal } = options;
    const client = await SwarmClient.connect(choice.url, {
      applicationName: "autoresearch run",
      signal,
    });
    try {
      const hardwareClass = choice.hardwareClass ?? detectHardwareClass(options.gpusPerReplicate);
      const host = await answeredBeforeStop(
        client.join({
          taskHash: taskHash(options.taskFile),
          taskFile: options.taskFile,
          hardwareClass,
          stages: options.stages,
          slots: options.slots,
        }),
        signal,
      );
      const head = await answeredBeforeStop(client.line(), signal);
      if (!head)
        throw new SwarmError(
          `the swarm at ${client.where} has no line yet: run \`autoresearch swarm init\` there first`,
        );
      const link = new SwarmLink(
        client,
        options.ledger,
        options.run,
        options.root,
        host,
        hardwareClass,
        choice.remote ?? head.remote,
        head,
        options.emit,
        options.signal,
        options.stages,
        options.promotion,
      );
      try {
        await link.start();
      } catch (error) {
        await link.close(0);
        throw error;
      }
      return link;
    } catch (error) {
      await client.close();
      throw error;
    }
  }

  /**
   * Checks, before a run is recorded, that the swarm takes this task (refused with the
   * differing lines named), and returns its base commit, fetched from the remote when this
   * clone lacks it. A stop is not held for a database that does not answer, as in `open`.
   */
  static async preflight(
    root: string,
    choice: SwarmChoice,
    taskFile: string,
    tag: string,
    signal: AbortSignal,
  ): Promise<string> {
    const client = await SwarmClient.connect(choice.url, { signal });
    const answered = <T>(call: Promise<T>) => answeredBeforeStop(call, signal);
    try {
      refuseOtherTask(
        await answered(client.task()),
        { taskHash: taskHash(taskFile), taskFile },
        client.where,
      );
      // A tag this role used before would give the new run's trials the same uids.
      if (await answered(client.usedTag(tag)))
        throw new SwarmError(
          `this host's role already has trials of a run tagged "${tag}" in the swarm at ${client.where}: start this run with another --tag`,
        );
      const head = await answered(client.line());
      if (!head)
        throw new SwarmError(
          `the swarm at ${client.where} has no line yet: run \`autoresearch swarm init\` there first`,
        );
      const remote = choice.remote ?? head.remote;
      await fetchCommit(root, remote, "refs/autoresearch-swarm/base", head.baseCommit, signal);
      return head.baseCommit;
    } finally {
      await client.close();
    }
  }

  private async start(): Promise<void> {
    const watching = this.client.watchLine(
      (head) => {
        this.head = head;
        this.wake?.();
        void this.askPromotion(head.version);
      },
      { known: this.head.version, onError: () => undefined },
    );
    // Not waited on past a moment after a stop (a hung database); a watch that starts
    // after that is closed at once (closing the connection ends its reads).
    this.watch = await this.beforeStop(watching).catch((error: unknown) => {
      void watching.then((w) => w.close()).catch(() => undefined);
      throw error;
    });
    // Whatever an earlier session left unuploaded (killed, or the database away), and
    // what it uploaded as interrupted that has ended since (read back by resume).
    const done = await this.beforeStop(this.client.uploaded());
    const unuploaded = this.ledger.finished(this.run.id).filter((t) => {
      const there = done.get(this.uid(t));
      return !there || (there === "interrupted" && t.verdict !== "interrupted");
    });
    // Their claims too, which the upload releases: the process that made them is gone,
    // and with it their ids (a claim left open shows as in flight until its lease lapses).
    const held = unuploaded.length
      ? await this.beforeStop(this.client.heldClaims(unuploaded.map((t) => this.uid(t))))
      : new Map<string, number>();
    for (const t of unuploaded) {
      this.uploads.push(t.id);
      const claim = held.get(this.uid(t));
      if (claim !== undefined) this.claims.set(t.id, claim);
    }
    // The incumbent again (its upload is a no-op): a session that ended between a keep's
    // upload and its class's compare-and-swap left the class's best behind.
    const incumbent = this.ledger.incumbent(this.run.id);
    if (incumbent && !this.uploads.includes(incumbent.id)) this.uploads.push(incumbent.id);
    this.flush();
    this.carries.push(...pendingCarries(this.ledger, this.run.id));
    // One round of each at a time: a slow database must not stack them up.
    const every = (ms: number, work: () => Promise<void>) => {
      let busy = false;
      const timer = setInterval(() => {
        if (busy) return;
        busy = true;
        const round: Promise<void> = work()
          .then(
            () => {
              this.lost = false;
            },
            (error) => {
              if (isUnreachable(error)) this.lost = true;
            },
          )
          .finally(() => {
            busy = false;
            this.rounds.delete(round);
          });
        this.rounds.add(round);
      }, ms);
      timer.unref();
      this.timers.push(timer);
    };
    every((LEASE_S * 1000) / 5, async () => {
      await this.client.heartbeat();
      for (const id of this.claims.values()) await this.client.renew(id, LEASE_S);
      for (const id of await this.heldJobs.renew((id) => this.client.renewPromotion(id, LEASE_S)))
        this.emit({
          type: "notice",
          text: `swarm: promotion ${id} is no longer this host's (its lease lapsed and another host took it): this host stops it`,
        });
    });
    every(2_000, async () => {
      this.others = (await this.client.inFlight()).filter((c) => c.host !== this.host);
      const page = await this.client.history({
        withDiffs: false,
        ...(this.cursor ? { cursor: this.cursor } : {}),
      });
      this.cursor = page.cursor;
      for (const t of page.trials) {
        if (t.host === this.host || !t.parentCommit || !t.title || t.baseline) continue;
        const titles = this.triedOn.get(t.parentCommit) ?? new Set();
        titles.add(t.title);
        this.triedOn.set(t.parentCommit, titles);
      }
      const lines = page.trials
        .filter((t) => t.host !== this.host && !t.baseline)
        .map(
          (t) =>
            `${t.title ?? "(untitled)"}: ${t.verdict}${t.metric === null ? "" : ` ${Number(t.metric.toPrecision(6))}`} (${t.host}, ${t.hardwareClass})`,
        );
      this.latest = [...this.latest, ...lines].slice(-RECENT);
    });
  }

  /** The line's head as last heard. */
  get line(): LineHead {
    return this.head;
  }

  /** The other hosts' latest finished trials, one line each, for the researchers' briefs. */
  get recent(): string[] {
    return this.latest;
  }

  /** Titles of the changes the other hosts tried on `parent`, as last read. */
  triedElsewhere(parent: string): ReadonlySet<string> {
    return this.triedOn.get(parent) ?? new Set();
  }

  /**
   * Titles of what the other hosts run now, as last read: bare, as researchers title their
   * own changes, so that one can tell a change from what runs elsewhere and leave it alone.
   */
  get running(): string[] {
    return this.others.flatMap((c) => c.title ?? []);
  }

  /** Resolves when the line moves next (the loop waits on it beside its trials). */
  moved(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        this.wake = null;
        resolve();
      };
    });
  }

  /** The head to adopt before proposing more: another keep than the local incumbent. */
  toAdopt(incumbentCommit: string | null): LineHead | null {
    const head = this.head;
    if (head.version === 0 || head.commitSha === incumbentCommit) return null;
    // This run's own keep, whose move landed unanswered (the database hung, or a stop or
    // the run's limit came first): its own trial settles it, judged again on `resume`. A
    // ledger that does not hold that trial (restored from a backup) adopts it as any head.
    if (head.host === this.host && head.runTag === this.run.tag && head.localN != null) {
      const own = this.ledger.trial(this.run.id, head.localN);
      if (own?.commit === head.commitSha) return null;
    }
    return this.failed.has(head.version) ? null : head;
  }

  /** The adoption of `head` failed here: the host cannot build on the line. */
  adoptFailed(head: LineHead): void {
    this.failed.add(head.version);
  }

  /**
   * Fetches the head's commit from the remote, so that a worktree can check it out;
   * retried with backoff while the remote is unreachable, as a keep's push is: until the
   * stop, or AT_LIMIT_WAIT_MS once `atLimit` holds (an attempt in flight is ended then: a
   * RemoteUnreachableError). Refused at once when the remote answers that it lacks the
   * trial's ref.
   */
  async fetchHead(head: LineHead, atLimit: () => boolean = () => false): Promise<void> {
    const ref = remoteRef(head.host!, head.runTag!, head.localN!);
    const limit = abortAtLimit(atLimit);
    const signal = AbortSignal.any([this.signal, limit.signal]);
    try {
      await retryGit(
        () => fetchCommit(this.root, this.remote, ref, head.commitSha, signal),
        signal,
        (message) => this.emit({ type: "notice", text: `swarm: ${message}` }),
        (error) =>
          /couldn't find remote ref|not our ref|does not point to a commit/i.test(error.message),
      );
    } catch (error) {
      if (limit.signal.aborted && !this.signal.aborted)
        throw new RemoteUnreachableError(
          `the swarm's remote ${redactRemote(this.remote)} did not give the line's head (${head.commitSha.slice(0, 12)}, host ${head.host}'s keep)`,
        );
      throw error;
    } finally {
      limit.clear();
    }
  }

  /**
   * The keeps that made `commits`, whichever host made them, each with the value measured
   * on its keeper's class for the line version it was made on (null when none was).
   */
  async keepsOf(
    commits: string[],
  ): Promise<Map<string, { trial: SwarmTrial; parentMetric: number | null }>> {
    const keeps = commits.length ? await this.retry(() => this.client.keepsOf(commits)) : [];
    const found = new Map<string, { trial: SwarmTrial; parentMetric: number | null }>();
    for (const trial of keeps) {
      const parent = trial.parentCommit
        ? await this.retry(() => this.client.measured(trial.parentCommit!, trial.hardwareClass))
        : null;
      found.set(trial.commitSha!, { trial, parentMetric: parent?.metric ?? null });
    }
    return found;
  }

  /**
   * A commit's measurement on this host's class, when a host of the class made it (a
   * head, or the starting commit with its noise floor): a class measures each once.
   */
  measured(commit: string) {
    return this.retry(() => this.client.measured(commit, this.hardwareClass));
  }

  /**
   * A commit's measurement on this host's class (the starting commit, or a line head to
   * adopt): another host's, or null when this host is to make it, under a claim. While
   * another host of the class measures it, waits for that measurement rather than run the
   * same code again, for at most `waitMs` (as long as an honest measurement can take);
   * takes the work over when that host's claim lapses (it died). `what` names the commit
   * in notices. `noise`: a measurement without a noise floor will not do (one made before
   * the swarm kept them, or with one seed). `meanwhile`: the run may start trials while it
   * waits (its limits leave room for them).
   */
  async measurementOf(
    trial: TrialRow,
    options: { commit: string; what: string; noise: boolean; waitMs: number; meanwhile: boolean },
  ): Promise<Measurement | null> {
    try {
      return await this.classMeasurement(trial, options);
    } finally {
      this.awaitingMeasurement = false;
    }
  }

  private async classMeasurement(
    trial: TrialRow,
    options: { commit: string; what: string; noise: boolean; waitMs: number; meanwhile: boolean },
  ): Promise<Measurement | null> {
    const { commit, what } = options;
    const measured = async () => {
      const known = await this.measured(commit);
      return known && (known.noise || !options.noise) ? known : null;
    };
    // One key for any commit measured as it is (an adoption is uploaded as a baseline too),
    // as hosts of earlier versions claim the starting commit.
    const keys = {
      diffHash: `baseline of ${commit} on ${this.hardwareClass}`,
      uid: this.uid(trial),
    };
    const since = monotonic();
    const classes = new Map<string, string | null>();
    for (let told = false; ; told = true) {
      const known = await measured();
      if (known) return known;
      const answer = await this.retry(() => this.client.claim(keys, LEASE_S, what));
      if (answer.ok) {
        // Its measurement may have landed between the two reads, releasing its claim.
        const landed = await measured();
        if (!landed) {
          this.claims.set(trial.id, answer.id);
          if (told)
            this.emit({
              type: "notice",
              text: `swarm: the claim on ${what} on ${this.hardwareClass} ended without a measurement (its host stopped or died, or its measurement failed there): this host measures it itself`,
            });
          return null;
        }
        await this.beforeStop(this.client.release(answer.id)).catch(() => false);
        return landed;
      }
      // Only a host of this class measures for it, and none takes longer than its
      // replicates' time limits: a claim that says otherwise is not waited on.
      if (!classes.has(answer.host))
        classes.set(answer.host, await this.retry(() => this.client.hostClass(answer.host)));
      const theirs = classes.get(answer.host) ?? null;
      const late = monotonic() - since > options.waitMs;
      if (theirs !== this.hardwareClass || late) {
        this.emit({
          type: "notice",
          text: `swarm: host ${answer.host} holds the claim on ${what} on ${this.hardwareClass} but ${late ? `has not measured it in ${Math.round(options.waitMs / 1000)} s` : `joined as ${theirs ?? "no class"}`}: this host measures it itself`,
        });
        return null;
      }
      if (!told) {
        this.emit({
          type: "notice",
          text: `swarm: host ${answer.host} is measuring ${what} on ${this.hardwareClass}: this host takes its measurement rather than run the same code again (waiting up to ${Math.round(options.waitMs / 1000)} s${options.meanwhile ? ", trying changes meanwhile" : ""})`,
        });
        this.awaitingMeasurement = true;
        this.wake?.();
      }
      await pause(MEASUREMENT_POLL_MS, this.signal);
      if (this.signal.aborted)
        throw new SwarmError(
          `stopped while host ${answer.host} measured ${what} on ${this.hardwareClass}`,
        );
    }
  }

  /**
   * Claims the trial's change before it runs: null when granted, else why not (another
   * host tried or runs the same change). Waits out a lost database, with backoff.
   */
  async claim(
    trial: TrialRow,
    options: { ownTried?: boolean } = {},
  ): Promise<Extract<ClaimResult, { ok: false }> | null> {
    trial = this.ledger.trialById(trial.id) ?? trial;
    const diff = this.diffOf(trial);
    if (!diff) return null;
    const answer = await this.retry(() =>
      this.client.claim(
        { diffHash: diffHash(diff), uid: this.uid(trial) },
        LEASE_S,
        trial.title ?? undefined,
      ),
    );
    // A carried win is the change this host ran before: its own trial does not refuse it.
    if (!answer.ok) return options.ownTried && answer.host === this.host ? null : answer;
    this.claims.set(trial.id, answer.id);
    return null;
  }

  /**
   * Pushes a keep's commit and moves the line to it (uploading the keep in the same
   * transaction). False when another host's keep moved the line first. Waits out a lost
   * remote or database with backoff, but once `atLimit` says the run has reached its
   * limit, for AT_LIMIT_WAIT_MS at most each: a SwarmUnreachableError then (a
   * RemoteUnreachableError for the push), as on a stop.
   */
  async advance(
    keep: TrialRow,
    result: { metric: number | null; metrics: Record<string, number>; runMs: number },
    atLimit: () => boolean = () => false,
  ) {
    await this.push(keep, atLimit);
    const upload = {
      ...this.uploadOf(keep),
      ...result,
      verdict: "keep" as const,
      metric: result.metric,
      finishedAt: Date.now(),
    };
    const claim = this.claims.get(keep.id);
    const moved = await this.retry(
      () => this.client.advance(this.head.version, upload, claim),
      this.signal,
      atLimit,
    );
    if (moved.ok) this.claims.delete(keep.id);
    if (moved.ok) await this.askPromotion(moved.version, atLimit);
    // The head as it is now (the watch may lag): this keep, or the one that came first.
    // Not waited for past the run's limit or stop: the watch brings it too.
    const now = await this.retry(() => this.client.line(), this.signal, atLimit).catch(
      (error: unknown) => {
        if (isUnreachable(error)) return null;
        throw error;
      },
    );
    if (now && now.version >= this.head.version) this.head = now;
    return moved;
  }

  /**
   * Every N versions of the line, its head is tried at the next stage by a host that can.
   * Any host that sees such a head asks (the database keeps one request), so a request is
   * not lost with the host whose keep made it. A refusal is said, never fatal.
   */
  private async askPromotion(version: number, atLimit = () => false): Promise<void> {
    const promotion = this.promotion;
    if (!promotion || version === 0 || version % promotion.every !== 0) return;
    try {
      await this.answered(
        () => this.client.requestPromotion(promotion.stage, version),
        this.signal,
        atLimit,
      );
    } catch (error) {
      if (!isUnreachable(error)) this.promotionsRefused(error);
    }
  }

  private promotionsRefused(error: unknown): void {
    if (this.promotionsOff) return;
    this.promotionsOff = (error as Error).message;
    this.emit({
      type: "notice",
      text: `swarm: promotions are off on this host: the database refused them (${this.promotionsOff})`,
    });
  }

  /**
   * A promotion this host can run on `commit` (its incumbent, the head it stands on), taken
   * with a lease; null when there is none, or the database is away or refuses (said once).
   */
  async takePromotion(commit: string): Promise<PromotionJob | null> {
    if (!this.promotion || !this.stages.includes(this.promotion.stage)) return null;
    if (this.promotionsOff) return null;
    try {
      const job = await this.beforeStop(this.client.takePromotion(this.stages, commit, LEASE_S));
      if (job) this.heldJobs.take(job.id);
      return job;
    } catch (error) {
      if (!isUnreachable(error)) this.promotionsRefused(error);
      return null;
    }
  }

  /** Aborts when this host loses the promotion's lease: it must stop, another may run it. */
  lease(job: PromotionJob): AbortSignal {
    return this.heldJobs.signal(job.id);
  }

  /** Hands a promotion back, pending again: this host no longer stands on its head. */
  async releasePromotion(job: PromotionJob): Promise<void> {
    this.heldJobs.drop(job.id);
    await this.beforeStop(this.client.releasePromotion(job.id)).catch(() => false);
  }

  /**
   * Records a promotion's end (its transfer table, or why it failed) for every host;
   * false when the database could not take it (away past a stop, or the lease was lost).
   */
  async finishPromotion(job: PromotionJob, end: PromotionEnd): Promise<boolean> {
    this.heldJobs.drop(job.id);
    try {
      return await this.retry(() => this.client.finishPromotion(job.id, end));
    } catch (error) {
      if (this.signal.aborted || isUnreachable(error)) return false;
      throw error;
    }
  }

  /** Queues a finished trial for its push and upload (done in the background, in order). */
  recorded(trial: TrialRow): void {
    this.uploads.push(trial.id);
    this.flush();
  }

  /**
   * Ends the watch and timers, waits up to `graceMs` for the uploads still queued, and
   * says in the database that this host left (see `leave`); a few seconds at most, also
   * when the database hangs.
   */
  async close(graceMs = this.signal.aborted ? 3_000 : 10_000): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    // At the limit, the uploads get what is left of the wait the database has had.
    if (this.limitWait)
      graceMs = Math.min(graceMs, Math.max(0, this.limitWait.until - monotonic()));
    // What is still queued then is uploaded by the next `resume`: nothing is lost.
    const uploaded = settlesWithin(this.uploading ?? Promise.resolve(), graceMs).then(() => {
      this.closing.abort();
      this.sayNotUploaded();
    });
    // Each bounded, so side by side: a hung database holds the close for the longest of
    // them, not their sum (an upload does not say the host is alive, as a heartbeat would).
    // The watch listens on a connection of its own, apart from the pool.
    const pool = Promise.all([uploaded, this.leave()]).then(() => this.client.close());
    await Promise.all([pool, this.watch?.close()]);
  }

  /** Names the trials the swarm lacks as the run ends, so that no one wonders where they are. */
  private sayNotUploaded(): void {
    const left = this.uploads.flatMap((id) => this.ledger.trialById(id)?.n ?? []);
    if (!left.length) return;
    this.emit({
      type: "notice",
      text: `swarm: ${left.map((n) => `#${n}`).join(", ")} not uploaded to the swarm yet: the next \`autoresearch resume --tag ${this.run.tag}\` pushes and uploads what is missing`,
    });
  }

  /**
   * Says that this host left, so that status shows it gone at once rather than alive
   * until its heartbeat ages out: after the rounds in flight (a heartbeat landing after it
   * would say the host is back), and only while the database answers (one that did not
   * answer last time is not waited on). At most a moment or two, and never fails: a host
   * that could not say it ages out as a killed one does.
   */
  private async leave(): Promise<void> {
    if (this.lost) return;
    if (!(await settlesWithin(Promise.all(this.rounds), LEAVE_MS)) || this.lost) return;
    await this.client.leave(LEAVE_MS);
  }

  /** Whose redacted database this is, for messages. */
  get where(): string {
    return this.client.where;
  }

  private flush(): void {
    if (this.uploading) return;
    this.uploading = (async () => {
      while (this.uploads.length && !this.closing.signal.aborted) {
        const trial = this.ledger.trialById(this.uploads[0]!);
        if (trial?.state === "done") {
          await this.push(trial);
          const claim = this.claims.get(trial.id);
          const { id } = await this.retry(
            () =>
              this.client.recordTrial(this.uploadOf(trial), claim ? { releaseClaim: claim } : {}),
            this.closing.signal,
          );
          this.claims.delete(trial.id);
          if (trial.verdict === "keep" && trial.metric !== null) await this.best(id);
        }
        this.uploads.shift();
      }
    })()
      .catch((error) => {
        if (this.closing.signal.aborted) return;
        // A refusal (the remote denies this host's pushes, the database its uploads) is no
        // passing outage: the run stops, and the next `resume` uploads what is left.
        if (!(error instanceof SwarmUnreachableError)) {
          this.failure ??= `${(error as Error).message}; nothing recorded is lost, and \`autoresearch resume\` uploads what is left once that is fixed`;
          this.wake?.();
          return;
        }
        this.emit({
          type: "notice",
          text: `swarm: uploads paused (${(error as Error).message}); the next \`autoresearch resume\` uploads what is left`,
        });
      })
      .finally(() => {
        this.uploading = null;
      });
  }

  /**
   * Offers a measured keep (own, or an adoption) as its class's incumbent, the best value
   * measured on the class; a worse one is refused by the database and changes nothing.
   */
  private async best(trialId: number): Promise<void> {
    const cls = this.hardwareClass;
    for (let tries = 0; tries < 3; tries++) {
      const current = await this.retry(() => this.client.incumbent(cls), this.closing.signal);
      const swap = await this.retry(
        () => this.client.cas(cls, current.version, trialId),
        this.closing.signal,
      );
      if (swap.ok || swap.reason !== "stale") return;
    }
  }

  /**
   * Pushes a trial's commit to its ref on the remote, retried with backoff while the
   * remote does not answer, until the stop, the close, or AT_LIMIT_WAIT_MS once `atLimit`
   * holds (an attempt in flight is ended then: a RemoteUnreachableError); a refusal
   * (access, a rejected ref) stops with what git said.
   */
  private async push(trial: TrialRow, atLimit: () => boolean = () => false): Promise<void> {
    // A measurement's commit (the base, an adopted head) is on the remote under another
    // ref; so its upload, which releases its claim, does not wait for the remote, nor is it
    // given up on a stop (the class-mates waiting for it would wait out the claim's lease).
    if (!trial.commit || trial.baseline || trial.researcher === ADOPTER) return;
    const ref = remoteRef(this.host, this.run.tag, trial.n);
    const shown = redactRemote(this.remote);
    const limit = abortAtLimit(atLimit);
    const signal = AbortSignal.any([this.signal, this.closing.signal, limit.signal]);
    try {
      await retryGit(
        () =>
          git(this.root, ["push", "--quiet", this.remote, `${trial.commit}:${ref}`], {
            signal,
            timeoutMs: REMOTE_TIMEOUT_MS,
          }),
        signal,
        (message) =>
          this.emit({ type: "notice", text: `swarm: ${message.replaceAll(this.remote, shown)}` }),
        (error) => REFUSED.test(error.message),
      );
    } catch (error) {
      const said = (error as Error).message.split("\n").find((l) => l.trim()) ?? "";
      if (signal.aborted && !REFUSED.test((error as Error).message))
        throw new RemoteUnreachableError(
          `the swarm's remote ${shown} did not take #${trial.n}: ${said.replaceAll(this.remote, shown)}`,
        );
      throw new SwarmError(
        `could not push #${trial.n} to the swarm's remote ${shown}: ${said.replaceAll(this.remote, shown)}; check this host's access to it, or give the remote as this host reaches it with --swarm-remote`,
      );
    } finally {
      limit.clear();
    }
  }

  /**
   * `work` again with backoff while the database is unreachable, until `signal` aborts
   * (an attempt still in flight then is let go after a moment); and, once `atLimit`
   * holds, within the run's wait at its limit (see `limitWait`).
   */
  private async retry<T>(
    work: () => Promise<T>,
    signal = this.signal,
    atLimit: () => boolean = () => false,
  ): Promise<T> {
    let told = false;
    try {
      const result = await retry(() => this.answered(work, signal, atLimit), {
        signal,
        until: () => (atLimit() ? this.waitAtLimit().until : null),
        onRetry: (error) => {
          this.lost = true;
          if (told) return;
          told = true;
          this.emit({
            type: "notice",
            text: `swarm: ${error.message}; retrying with backoff, nothing new starts meanwhile`,
          });
        },
      });
      this.lost = false;
      // A call waited for at the limit was answered: a later one gets its own
      // AT_LIMIT_WAIT_MS. Another call's answer (an upload beside it) leaves the wait as it
      // is, or a slow database would restart it and be waited for past what was said.
      if (atLimit()) this.limitWait = null;
      return result;
    } catch (error) {
      if (isUnreachable(error)) this.lost = true;
      throw error;
    }
  }

  /**
   * `work`'s answer, let go a moment after `signal` aborts; and once `atLimit` holds, at
   * the end of the run's wait at its limit (an attempt then is not even made).
   */
  private answered<T>(
    work: () => Promise<T>,
    signal: AbortSignal,
    atLimit: () => boolean,
  ): Promise<T> {
    if (!atLimit()) return answeredBeforeStop(work(), signal);
    const wait = this.waitAtLimit();
    const when = `in the ${AT_LIMIT_WAIT_MS / 1000} s it is waited for once the run has reached its limit`;
    if (wait.over.aborted)
      return Promise.reject(
        new SwarmUnreachableError(`the swarm's database did not answer ${when}`),
      );
    return answeredBeforeStop(answeredBeforeStop(work(), signal), wait.over, 0, when);
  }

  /** The run's wait at its limit, begun now unless it has begun already. */
  private waitAtLimit(): LimitWait {
    this.limitWait ??= {
      until: monotonic() + AT_LIMIT_WAIT_MS,
      over: AbortSignal.timeout(AT_LIMIT_WAIT_MS),
    };
    return this.limitWait;
  }

  /** A call made once, not waited for past a moment after the run's stop. */
  private beforeStop<T>(call: Promise<T>): Promise<T> {
    return answeredBeforeStop(call, this.signal);
  }

  private uid(trial: TrialRow): string {
    return `${this.run.tag}/${trial.n}`;
  }

  private diffOf(trial: TrialRow): string | null {
    const file = join(paths.trial(this.root, this.run.tag, trial.n), TRIAL_FILES.diff);
    return readHead(file, 10_000_000);
  }

  private uploadOf(trial: TrialRow): TrialUpload {
    const adopted = trial.researcher === ADOPTER;
    // A trial refused before it ran made no change in the swarm: its diff is not offered,
    // so that it does not count as tried.
    const ran = !trial.reason?.startsWith(NOT_RUN);
    const diff = trial.baseline || adopted || !ran ? null : this.diffOf(trial);
    return {
      uid: this.uid(trial),
      runTag: this.run.tag,
      localN: trial.n,
      ...(trial.title ? { title: trial.title } : {}),
      ...(trial.hypothesis ? { hypothesis: trial.hypothesis } : {}),
      ...(diff ? { diff } : {}),
      parentCommit: trial.parentCommit,
      ...(trial.commit ? { commitSha: trial.commit } : {}),
      hardwareClass: this.hardwareClass,
      verdict: (trial.verdict ?? "interrupted") as SwarmVerdict,
      baseline: trial.baseline || adopted,
      metric: trial.metric,
      metrics: trial.metrics,
      costUsd: this.ledger.proposal(trial.id)?.usage?.costUsd ?? 0,
      runMs: trial.runMs ?? 0,
      ...(trial.finishedAt ? { finishedAt: trial.finishedAt } : {}),
      ...(trial.baseline ? this.noiseOf(trial) : {}),
    };
  }

  /** The noise floor this host measured on the baseline, for its class's other hosts. */
  private noiseOf(trial: TrialRow): Pick<TrialUpload, "noise"> {
    const json = this.ledger.runById(this.run.id)?.noiseJson;
    const noise = json ? (JSON.parse(json) as NoiseFloor) : null;
    if (!noise || noise.trial !== trial.n || noise.measuredBy || noise.values.length < 2) return {};
    return { noise: { seeds: noise.seeds, values: noise.values } };
  }
}

/**
 * A git remote as it may be recorded or shared: an http(s) URL loses its user and password
 * (a token often stands in either), another URL its password; an scp-like address
 * (git@host:path) holds none.
 */
export function remoteWithoutPassword(remote: string): string {
  return remoteMasked(remote, "");
}

/** A git remote as it may be shown: its credentials as `***`. */
export function redactRemote(remote: string): string {
  return remoteMasked(remote, "***");
}

function remoteMasked(remote: string, mask: string): string {
  let url: URL;
  try {
    url = new URL(remote);
  } catch {
    return remote;
  }
  if (/^https?:$/.test(url.protocol) && url.username) url.username = mask;
  if (url.password) url.password = mask;
  if (!mask) url.password = "";
  return url.toString();
}

/** Fetches `ref` from the remote unless `commit` is here already. */
async function fetchCommit(
  root: string,
  remote: string,
  ref: string,
  commit: string,
  signal?: AbortSignal,
) {
  const have = await git(root, ["cat-file", "-t", commit]).catch(() => "");
  if (have === "commit") return;
  const options = { ...(signal ? { signal } : {}), timeoutMs: REMOTE_TIMEOUT_MS };
  await git(root, ["fetch", "--quiet", remote, `+${ref}:${ref}`], options).catch((error: Error) => {
    throw new SwarmError(
      `could not fetch ${ref} (commit ${commit.slice(0, 12)}) from the swarm's remote ${redactRemote(remote)}: ${error.message.replaceAll(remote, redactRemote(remote))}`,
    );
  });
}

/**
 * git against the remote, retried with backoff while it is unreachable; an error that
 * `final` names (the remote answered, and the answer is no) is thrown at once.
 */
async function retryGit(
  work: () => Promise<unknown>,
  signal: AbortSignal,
  tell: (message: string) => void,
  final: (error: Error) => boolean = () => false,
): Promise<void> {
  for (let attempt = 0, delay = 500; ; attempt++, delay = Math.min(delay * 2, 30_000)) {
    try {
      await work();
      return;
    } catch (error) {
      if (signal.aborted || final(error as Error)) throw error;
      if (attempt === 0)
        tell(
          `the remote did not answer (${(error as Error).message.split("\n")[0]}); retrying with backoff`,
        );
      await pause(delay, signal);
    }
  }
}

/** What `swarm init` did. */
export interface SwarmInit {
  where: string;
  baseCommit: string;
  /** Whether this call pushed the base (false: the swarm had started). */
  pushed: boolean;
  applied: number[];
  taskRecorded: boolean;
}

/**
 * Starts a swarm on the task in `root`: pushes its HEAD to the remote (the base every
 * host starts from, also as branch autoresearch-swarm to clone), creates or updates the
 * schema, and records the task file and the line's start. Safe to run again.
 */
export async function initSwarm(options: {
  root: string;
  url: string;
  remote: string;
  hostsRole?: string;
  taskFile: string;
  metric: string;
  goal: "minimize" | "maximize";
  /** The stage the line's head is promoted to, every how many versions; null: never. */
  promotion?: PromotionRule | null;
}): Promise<SwarmInit> {
  const client = await SwarmClient.connect(options.url, { applicationName: "autoresearch init" });
  try {
    const mine = { taskHash: taskHash(options.taskFile), taskFile: options.taskFile };
    // A swarm that has started keeps its base: init again pushes nothing, and another
    // task is refused before anything reaches the remote.
    // Only a database without the schema has no line: one that stops answering meanwhile
    // is an error, not a new swarm whose base would be pushed over the old one.
    const started = (await client.hasSchema()) ? await client.line() : null;
    if (started) refuseOtherTask(await client.task(), mine, client.where);
    if (started && started.remote !== remoteWithoutPassword(options.remote))
      throw new SwarmError(
        `the swarm at ${client.where} started with the remote ${redactRemote(started.remote)}, not ${redactRemote(options.remote)}: give that one (a host that reaches it by another address says so with run --swarm-remote)`,
      );
    const base = started?.baseCommit ?? (await git(options.root, ["rev-parse", "HEAD"]));
    if (!started)
      await git(options.root, [
        "push",
        "--quiet",
        options.remote,
        `${base}:refs/autoresearch-swarm/base`,
        `${base}:refs/heads/autoresearch-swarm`,
      ]).catch((error: Error) => {
        throw new SwarmError(
          `could not push to the swarm's remote ${redactRemote(options.remote)}: ${error.message.replaceAll(options.remote, redactRemote(options.remote))}`,
        );
      });
    const result = await client.init(
      {
        ...mine,
        metric: options.metric,
        goal: options.goal,
      },
      {
        baseCommit: base,
        remote: remoteWithoutPassword(options.remote),
        ...(options.hostsRole ? { hostsRole: options.hostsRole } : {}),
        promotion: options.promotion ?? null,
      },
    );
    return { where: client.where, baseCommit: base, pushed: !started, ...result };
  } finally {
    await client.close();
  }
}
