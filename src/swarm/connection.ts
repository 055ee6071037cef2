import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { SwarmError } from "../errors.js";
import { settlesWithin } from "../util/clock.js";
import {
  redactUrl,
  type StatementLimits,
  SwarmBusyError,
  SwarmUnreachableError,
  statementEnded,
  swarmError,
  urlPassword,
} from "./errors.js";
import { SQLSTATE } from "./functions.js";

/** How long closing waits for the server to answer the goodbye before cutting the connections. */
const GOODBYE_MS = 1_000;
/** How long a statement's answer is waited for, unless the caller says otherwise. */
const QUERY_TIMEOUT_MS = 30_000;

/** How a host connects to the swarm's database. */
export interface ConnectOptions {
  /** Connections held at most (the incumbent watch opens one more of its own). Default 2. */
  poolSize?: number;
  /** Give up connecting after this many ms (a SwarmUnreachableError). Default 5,000. */
  connectTimeoutMs?: number;
  /**
   * Give up waiting for an answer after this many ms (a SwarmUnreachableError). Default
   * 30,000. The server ends a statement before then (see `statementLimits`).
   */
  queryTimeoutMs?: number;
  /** Shown in pg_stat_activity, so that an administrator sees which host holds what. */
  applicationName?: string;
}

/** Runs SQL statements; what the swarm's operations need of a connection. */
export interface Queryable {
  /** Contract: rows on success; throws SwarmUnreachableError or SwarmError, never a driver error. */
  query<T extends object>(doing: string, sql: string, params?: unknown[]): Promise<T[]>;
}

/**
 * A pool of connections to the swarm's database. Every failure leaves it as a SwarmError
 * whose message names the database by its redacted URL; a lost or refused connection is
 * a SwarmUnreachableError, and the pool connects anew on the next call, so a caller
 * simply retries (see `retry`).
 */
export class SwarmConnection implements Queryable {
  /** The URL without its password, for messages. */
  readonly where: string;
  private readonly pool: pg.Pool;
  /**
   * The connections not yet ended (the pool's, connecting ones too, and those of
   * `newClient`), so that closing can cut those a hung server holds.
   */
  private readonly open = new Set<pg.Client>();

  constructor(
    private readonly url: string,
    private readonly options: ConnectOptions = {},
  ) {
    this.where = redactUrl(url);
    const track = (client: pg.Client) => this.track(client);
    // Tracked from its making, not from its connecting: one that a hung server has taken
    // but not answered holds the process until its connect timeout unless closing cuts it.
    class Tracked extends Client {
      constructor(config?: pg.ClientConfig) {
        super(config);
        track(this);
      }
    }
    this.pool = new pg.Pool({
      ...this.clientConfig(),
      Client: Tracked,
      max: options.poolSize ?? 2,
    });
    // An idle connection that the server closes (a restart) is reported here; without a
    // listener Node would end the process. The next call connects anew and says so.
    this.pool.on("error", () => undefined);
    // A connection handed out has no listener of the pool's: the server may end it before
    // its taker listens (the same read that frees it can hold the server's goodbye), or
    // between a transaction's statements. The statement in flight, or the next, fails as
    // unreachable, and the pool drops a connection that errored when it comes back.
    this.pool.on("connect", (client) => {
      client.on("error", () => undefined);
    });
  }

  /**
   * `timeoutMs`: wait that long for the answer rather than the connection's query timeout
   * (a SwarmUnreachableError then, as for any answer that does not come).
   */
  async query<T extends object>(
    doing: string,
    sql: string,
    params: unknown[] = [],
    options: { timeoutMs?: number } = {},
  ): Promise<T[]> {
    try {
      // query_timeout per query is the driver's, though its types lack it.
      const result =
        options.timeoutMs === undefined
          ? await this.pool.query<T & pg.QueryResultRow>(sql, params)
          : await this.pool.query<T & pg.QueryResultRow>({
              text: sql,
              values: params,
              query_timeout: options.timeoutMs,
            } as pg.QueryConfig);
      return result.rows;
    } catch (error) {
      throw this.failure(error, doing);
    }
  }

  /** Calls swarm.<fn>(params…), one of the host functions, and returns the jsonb it answers. */
  async call<T>(
    doing: string,
    fn: string,
    params: unknown[],
    options: { timeoutMs?: number } = {},
  ): Promise<T> {
    const args = params.map((_, i) => `$${i + 1}`).join(", ");
    const rows = await this.query<{ r: T }>(
      doing,
      `SELECT swarm.${fn}(${args}) AS r`,
      params,
      options,
    );
    return rows[0]!.r;
  }

  /** Runs `work` in one transaction on one connection; rolled back if it throws. */
  async transaction<T>(doing: string, work: (db: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.failure(error, doing);
    }
    let broken = false;
    const db: Queryable = {
      query: async <R extends object>(what: string, sql: string, params: unknown[] = []) => {
        try {
          return (await client.query<R & pg.QueryResultRow>(sql, params)).rows;
        } catch (error) {
          throw this.failure(error, what);
        }
      },
    };
    try {
      await db.query(doing, "BEGIN");
      const result = await work(db);
      await db.query(doing, "COMMIT");
      return result;
    } catch (error) {
      const failure = error instanceof SwarmError ? error : this.failure(error, doing);
      // A connection that went away or did not answer (a hung server) would not answer a
      // rollback either: it is dropped, and the server rolls back with its end. One whose
      // statement the server ended answers, and is rolled back as after a refusal.
      if (failure instanceof SwarmUnreachableError && !(failure instanceof SwarmBusyError))
        broken = true;
      else
        await client.query("ROLLBACK").catch(() => {
          broken = true;
        });
      throw failure;
    } finally {
      // A connection whose rollback failed is in no known state: not handed out again.
      client.release(broken);
    }
  }

  /**
   * A connection of its own, outside the pool (LISTEN needs one that stays); closing cuts
   * it too, when its owner has not ended it by then.
   */
  newClient(): pg.Client {
    return this.track(new Client(this.clientConfig()));
  }

  /** Turns a driver error into the swarm's own, naming what was being done. */
  failure(error: unknown, doing: string): SwarmError {
    const code = (error as { code?: unknown }).code;
    // No schema swarm (3F000 for a function, 42P01 for a table): init has not run there.
    if (code === SQLSTATE.noTask || code === "3F000" || code === "42P01")
      return new SwarmError(
        `the swarm's database ${this.where} has no task yet: run \`autoresearch swarm init\` there first, as the swarm's owner role`,
      );
    if (code === SQLSTATE.notJoined)
      return new SwarmError(
        `this host has not joined the swarm at ${this.where} (${doing}): join first`,
      );
    // The pool's every connection taken by an earlier statement that the server has not
    // answered yet (one waiting on a lock, say): the server is there, and says why itself
    // once its lock_timeout ends that statement.
    const pool = this.pool;
    if (
      /timeout exceeded when trying to connect/.test((error as Error).message ?? "") &&
      pool.totalCount >= pool.options.max! &&
      pool.idleCount === 0
    )
      return new SwarmBusyError(
        `the swarm's database ${this.where} has not answered this host's ${pool.totalCount} earlier statements, so none of its connections was free for ${doing}: they wait on a lock another session holds (the server ends such a wait after ${Number((this.statementLimits().lockMs / 1000).toFixed(1))} s and says which), or the server hangs`,
      );
    return (
      statementEnded(error, this.where, doing, this.statementLimits()) ??
      swarmError(error, this.url, doing)
    );
  }

  /**
   * Ends the connections. A server that has not answered the goodbye after a moment (a
   * hung one: its processes stopped, the connections open) is not waited for: the
   * connections are cut, which also fails the statements still waiting on them.
   */
  async close(): Promise<void> {
    const ended = this.pool
      .end()
      .catch(() => undefined)
      .then(() => Promise.all([...this.open].map((c) => new Promise((r) => c.once("end", r)))));
    if (await settlesWithin(ended, GOODBYE_MS)) return;
    for (const client of this.open) client.connection.stream.destroy();
  }

  private track(client: pg.Client): pg.Client {
    this.open.add(client);
    client.once("end", () => this.open.delete(client));
    return client;
  }

  /**
   * What the server allows one statement, set on each session below the client's query
   * timeout: a call that waits on a lock or runs long is ended by the server, which says
   * why, before the client gives up on it. Given up on by the client alone, it would go on
   * waiting in the server while `retry` sent the same call again beside it. A lock wait
   * ends first, so that it is told as one rather than as a slow statement.
   */
  private statementLimits(): StatementLimits {
    const query = this.options.queryTimeoutMs ?? QUERY_TIMEOUT_MS;
    return { lockMs: Math.round(query * 0.6), statementMs: Math.round(query * 0.8) };
  }

  private clientConfig(): pg.ClientConfig {
    const limits = this.statementLimits();
    return {
      connectionString: this.url,
      connectionTimeoutMillis: this.options.connectTimeoutMs ?? 5_000,
      // A hung server (its connection open, nothing answering) is told from a slow one
      // only by time: an answer that has not come then is an outage, retried.
      query_timeout: this.options.queryTimeoutMs ?? QUERY_TIMEOUT_MS,
      lock_timeout: limits.lockMs,
      statement_timeout: limits.statementMs,
      keepAlive: true,
      application_name: this.options.applicationName ?? "autoresearch",
    };
  }
}

/**
 * The driver's client, except where no password is to be had. A server that wants one
 * (one that trusts the host never asks) would get the URL's empty one, and the driver
 * would then keep its socket open until the server's authentication timeout (a minute),
 * holding the process after the error. Instead the attempt fails at once, with what to
 * do, and its socket is closed.
 */
class Client extends pg.Client {
  constructor(config: pg.ClientConfig = {}) {
    super(config);
    if (!noPassword(config.connectionString ?? "")) return;
    const self = this as unknown as { password: () => never };
    self.password = () => {
      setImmediate(() => void this.end().catch(() => undefined));
      throw new Error("no password given");
    };
  }
}

/** Whether no password is to be had: none in the URL, PGPASSWORD or a password file. */
function noPassword(url: string): boolean {
  if (urlPassword(url) || process.env.PGPASSWORD) return false;
  const file = process.env.PGPASSFILE ?? join(homedir(), ".pgpass");
  return !existsSync(file);
}
