import { SwarmError } from "../errors.js";
import { settlesWithin } from "../util/clock.js";
import { type ClaimKeys, claim, heldClaims, inFlight, release, renew } from "./claims.js";
import { type ConnectOptions, SwarmConnection } from "./connection.js";
import { NEWEST_HOST_FUNCTION } from "./functions.js";
import { cas, incumbent, incumbents } from "./incumbent.js";
import { type AdvanceResult, advanceLine, hasSchema, type LineHead, lineHead } from "./line.js";
import {
  fromTaskRow,
  type InitOptions,
  type InitResult,
  initSwarm,
  MIGRATIONS,
  refuseOtherTask,
  type SwarmTaskRow,
  TASK_SELECT,
} from "./migrations.js";
import {
  finishPromotion,
  type PromotionEnd,
  type PromotionJob,
  promotionsOf,
  releasePromotion,
  renewPromotion,
  requestPromotion,
  type SwarmPromotion,
  takePromotion,
} from "./promotions.js";
import { answeredBeforeStop } from "./retry.js";
import { doctor, type SwarmProblem, type SwarmStatus, status } from "./status.js";
import { exactText } from "./text.js";
import { type HistoryPage, history, keepsOf, type RecordResult, recordTrial } from "./trials.js";
import type {
  CasResult,
  ClaimResult,
  HostInfo,
  Incumbent,
  InFlight,
  Measurement,
  SwarmTask,
  SwarmTrial,
  SwarmVerdict,
  TrialUpload,
} from "./types.js";
import { type IncumbentWatch, type WatchOptions, watchIncumbents, watchLine } from "./watch.js";

/**
 * One host's handle on a swarm's database. Every method throws SwarmUnreachableError when
 * the database cannot be reached (retry it with `retry`), SwarmError for misuse (a host
 * not joined, another task); refusals that are ordinary outcomes (a claim taken, a stale
 * compare-and-swap) are returned as values.
 */
export class SwarmClient {
  private constructor(private readonly db: SwarmConnection) {}

  /**
   * Connects to the database at `url` (postgres://role:password@host:port/database) and
   * checks that it answers. The password never appears in a message. `signal`: a stop
   * (Ctrl-C) is not held for a database that does not answer (see `answeredBeforeStop`).
   */
  static async connect(
    url: string,
    options: ConnectOptions & { signal?: AbortSignal } = {},
  ): Promise<SwarmClient> {
    const db = new SwarmConnection(url, options);
    try {
      const answer = db.query("connect", "SELECT 1");
      await (options.signal ? answeredBeforeStop(answer, options.signal) : answer);
    } catch (error) {
      await db.close();
      throw error;
    }
    return new SwarmClient(db);
  }

  /** The database's URL without its password. */
  get where(): string {
    return this.db.where;
  }

  /** Creates or updates the schema and records the task; run by the swarm's owner. */
  init(task: SwarmTask, options: InitOptions = {}): Promise<InitResult> {
    return initSwarm(this.db, task, options);
  }

  /** The task recorded by `init`; SwarmError when there is none yet. */
  async task(): Promise<SwarmTask> {
    const [row] = await this.db.query<SwarmTaskRow>("reading the task", TASK_SELECT);
    if (!row)
      throw new SwarmError(
        `the swarm's database ${this.where} has no task yet: run \`autoresearch swarm init\` there first, as the swarm's owner role`,
      );
    return fromTaskRow(row);
  }

  /**
   * Joins (or joins again) as the role this client logged in as. Refused with SwarmError,
   * naming the lines that differ, when the host's task file is not the swarm's.
   * Returns the host's name in the swarm.
   */
  async join(host: HostInfo): Promise<string> {
    refuseOtherTask(await this.task(), host, this.where);
    // A schema older than this host's code lacks functions it calls.
    const [row] = await this.db.query<{ v: number }>(
      "reading the schema's version",
      "SELECT coalesce(max(version), 0)::integer AS v FROM swarm.migrations",
    );
    if (row!.v >= MIGRATIONS.length) {
      const [can] = await this.db.query<{ ok: boolean }>(
        "reading this role's grants",
        "SELECT has_function_privilege($1, 'EXECUTE') AS ok",
        [NEWEST_HOST_FUNCTION],
      );
      if (!can!.ok)
        throw new SwarmError(
          `this host's role lacks the grants of the swarm's newest schema at ${this.where}: its owner runs \`autoresearch swarm init\` again with --hosts-role (the role every host is a member of)`,
        );
    }
    if (row!.v < MIGRATIONS.length)
      throw new SwarmError(
        `the swarm's database ${this.where} has schema version ${row!.v}, older than this autoresearch's ${MIGRATIONS.length}: its owner runs \`autoresearch swarm init\` again (with --hosts-role) to bring it up to date`,
      );
    const a = await this.db.call<{ host: string }>("join", "join_host", [
      host.taskHash,
      exactText("the host's hardware class", host.hardwareClass),
      host.stages.map((stage) => exactText("the host's stage", stage)),
      host.slots,
    ]);
    return a.host;
  }

  /** Says this host is alive (status counts hosts heard from lately, and not left). */
  async heartbeat(): Promise<void> {
    await this.db.call("heartbeat", "heartbeat", []);
  }

  /**
   * Says this host left, at a clean end of its run: status shows it gone at once rather
   * than alive until its last heartbeat ages out; a join or heartbeat makes it alive again.
   * Best effort: waits at most `withinMs` for the database and never throws. Returns
   * whether the database recorded it (false: unreachable, too slow, or not joined).
   */
  async leave(withinMs = 2_000): Promise<boolean> {
    let left = false;
    const call = this.db.call<{ left: boolean }>("leaving the swarm", "leave", [], {
      timeoutMs: withinMs,
    });
    await settlesWithin(
      call.then((a) => {
        left = a.left === true;
      }),
      withinMs,
    );
    return left;
  }

  /** See `claim` in claims.ts: granted, or refused with whose trial or claim matched. */
  claim(keys: ClaimKeys, leaseS: number, title?: string): Promise<ClaimResult> {
    return claim(this.db, keys, leaseS, title);
  }

  /** Extends a claim still in force; false when it lapsed or was released. */
  renew(claimId: number, leaseS: number): Promise<boolean> {
    return renew(this.db, claimId, leaseS);
  }

  /** Releases a claim; false when it was not open. */
  release(claimId: number): Promise<boolean> {
    return release(this.db, claimId);
  }

  /** Uploads a finished trial exactly once per uid, releasing `releaseClaim` with it. */
  recordTrial(trial: TrialUpload, options: { releaseClaim?: number } = {}): Promise<RecordResult> {
    return recordTrial(this.db, trial, options.releaseClaim);
  }

  /** Every host's trials not read before `cursor` (all without one), and the next cursor. */
  history(options: { cursor?: string; withDiffs?: boolean } = {}): Promise<HistoryPage> {
    return history(this.db, options);
  }

  /** See `heldClaims` in claims.ts: this host's claims in force on those trials, by uid. */
  heldClaims(uids: string[]): Promise<Map<string, number>> {
    return heldClaims(this.db, uids);
  }

  /** The claims in force: what every host is running now. */
  inFlight(): Promise<InFlight[]> {
    return inFlight(this.db);
  }

  /** A hardware class's incumbent (version 0 when none yet). */
  incumbent(hardwareClass: string): Promise<Incumbent> {
    return incumbent(this.db, hardwareClass);
  }

  /** Every class's incumbent. */
  incumbents(): Promise<Incumbent[]> {
    return incumbents(this.db);
  }

  /** Moves a class's incumbent to a trial if the version matches and its result beats it. */
  cas(hardwareClass: string, expectedVersion: number, trialId: number): Promise<CasResult> {
    return cas(this.db, hardwareClass, expectedVersion, trialId);
  }

  /** The line's head: the code every host builds on (null before init recorded it). */
  line(): Promise<LineHead | null> {
    return lineHead(this.db);
  }

  /** Whether `init` has created the swarm's schema in this database. */
  hasSchema(): Promise<boolean> {
    return hasSchema(this.db);
  }

  /** Asks for the line's head, at `version`, to be tried at `stage`; false if asked already or moved on. */
  requestPromotion(stage: string, version: number): Promise<boolean> {
    return requestPromotion(this.db, stage, version);
  }

  /** Takes the oldest promotion no one holds of one of `stages` on `commit`, with a lease. */
  takePromotion(
    stages: readonly string[],
    commit: string,
    leaseS: number,
  ): Promise<PromotionJob | null> {
    return takePromotion(this.db, stages, commit, leaseS);
  }

  /** Extends a promotion's lease; false when this host no longer holds it. */
  renewPromotion(id: number, leaseS: number): Promise<boolean> {
    return renewPromotion(this.db, id, leaseS);
  }

  /** Hands a held promotion back (pending again); false when not held. */
  releasePromotion(id: number): Promise<boolean> {
    return releasePromotion(this.db, id);
  }

  /** Records a held promotion's end and its transfer table; false when not held. */
  finishPromotion(id: number, end: PromotionEnd): Promise<boolean> {
    return finishPromotion(this.db, id, end);
  }

  /** The latest promotions (20), newest first. */
  promotions(): Promise<SwarmPromotion[]> {
    return promotionsOf(this.db);
  }

  /**
   * Uploads a keep and moves the line to it, both or neither (see `advanceLine`),
   * releasing `releaseClaim` with them.
   */
  advance(
    expectedVersion: number,
    keep: TrialUpload,
    releaseClaim?: number,
  ): Promise<AdvanceResult> {
    return advanceLine(this.db, expectedVersion, keep, releaseClaim);
  }

  /** This host's trials in the swarm, by uid, with their verdicts: what is uploaded already. */
  async uploaded(): Promise<Map<string, SwarmVerdict>> {
    const rows = await this.db.query<{ uid: string; verdict: SwarmVerdict }>(
      "reading this host's uploads",
      "SELECT uid, verdict FROM swarm.trials WHERE host = session_user",
    );
    return new Map(rows.map((r) => [r.uid, r.verdict]));
  }

  /**
   * A keep's measurement of `commit` on `hardwareClass` (the keep itself, a host's
   * adoption of it, or a baseline), the first recorded with a noise floor, else the first
   * recorded; null when the class has not measured it.
   */
  async measured(commit: string, hardwareClass: string): Promise<Measurement | null> {
    const [row] = await this.db.query<Measurement>(
      "reading a measurement",
      `SELECT metric, metrics, host, noise FROM swarm.trials
        WHERE commit_sha = $1 AND hardware_class = $2 AND verdict = 'keep' AND metric IS NOT NULL
        ORDER BY noise IS NULL, id LIMIT 1`,
      [commit, hardwareClass],
    );
    return row ?? null;
  }

  /** The keeps that made `commits`, whichever host made them. */
  keepsOf(commits: string[]): Promise<SwarmTrial[]> {
    return keepsOf(this.db, commits);
  }

  /** The hardware class host `name` joined as; null for no such host. */
  async hostClass(name: string): Promise<string | null> {
    const [row] = await this.db.query<{ hardware_class: string }>(
      "reading a host's class",
      "SELECT hardware_class FROM swarm.hosts WHERE name = $1",
      [name],
    );
    return row?.hardware_class ?? null;
  }

  /** Whether this host has trials of a run tagged `tag` in the swarm. */
  async usedTag(tag: string): Promise<boolean> {
    const rows = await this.db.query(
      "reading this host's run tags",
      "SELECT 1 FROM swarm.trials WHERE host = session_user AND run_tag = $1 LIMIT 1",
      [tag],
    );
    return rows.length > 0;
  }

  /** Reports each new incumbent as it comes (NOTIFY, with polling while that is down). */
  watchIncumbents(
    onChange: (incumbent: Incumbent) => void,
    options?: WatchOptions,
  ): Promise<IncumbentWatch> {
    return watchIncumbents(this.db, onChange, options);
  }

  /** Reports each new head of the line as it comes, like `watchIncumbents`. */
  watchLine(
    onChange: (head: LineHead) => void,
    options?: Omit<WatchOptions, "known"> & { known?: number },
  ): Promise<IncumbentWatch> {
    return watchLine(this.db, onChange, options);
  }

  /** Hosts, trials, keeps, spend, claims in force and the best per class. */
  status(options: { aliveWithinS?: number } = {}): Promise<SwarmStatus> {
    return status(this.db, options);
  }

  /** What does not hold of the swarm's invariants (empty: all hold). */
  doctor(): Promise<SwarmProblem[]> {
    return doctor(this.db);
  }

  /** Closes the connections (a watch is closed on its own). */
  close(): Promise<void> {
    return this.db.close();
  }
}
