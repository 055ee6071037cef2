import { SwarmError } from "../errors.js";

/**
 * The swarm's database could not be reached, or dropped the connection, or is starting or
 * shutting down. Expected while a database restarts or a network is down: the caller
 * finishes what it has in flight, records it locally and tries again later (see `retry`).
 * Its message never holds the password of the URL it was given.
 */
export class SwarmUnreachableError extends SwarmError {
  readonly retryable = true;
  constructor(
    message: string,
    /** The driver's error code (ECONNREFUSED, 57P01, …) when it gave one. */
    readonly code?: string,
  ) {
    super(message);
  }
}

/**
 * The database answered, but ended the statement: it waited on a lock past the session's
 * lock_timeout, ran past its statement_timeout, or was cancelled. Retried as an outage is
 * (the server has ended the statement, so a retry never runs beside it), but told as what
 * it is: the server is reachable, and the cause is another session or the server's load.
 */
export class SwarmBusyError extends SwarmUnreachableError {}

/** The limits the server holds a host's statements to (see `SwarmConnection`). */
export interface StatementLimits {
  /** lock_timeout: how long one statement may wait on one lock. */
  lockMs: number;
  /** statement_timeout: how long one statement may run. */
  statementMs: number;
}

/**
 * `error` as a SwarmBusyError when the server ended the statement (55P03 lock_not_available,
 * 57014 query_canceled), naming why and where to look; null for any other error.
 */
export function statementEnded(
  error: unknown,
  where: string,
  doing: string,
  limits: StatementLimits,
): SwarmBusyError | null {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== "55P03" && code !== "57014") return null;
  const detail = (error as Error).message;
  const look =
    "see in pg_stat_activity on that server which session holds it (a long transaction, a migration, an administrator's session; pg_blocking_pids() names it)";
  if (code === "55P03")
    return new SwarmBusyError(
      `the swarm's database ${where} ended ${doing} after it waited ${seconds(limits.lockMs)} on a lock (${detail}): another session holds a lock on what the call needs; ${look}`,
      code,
    );
  if (/statement timeout/.test(detail))
    return new SwarmBusyError(
      `the swarm's database ${where} ended ${doing} after it ran past ${seconds(limits.statementMs)} (${detail}): the server is overloaded, or the call waited behind another session's locks; ${look}`,
      code,
    );
  return new SwarmBusyError(
    `the swarm's database ${where} cancelled ${doing} (${detail}): an administrator's pg_cancel_backend, or the server shutting down`,
    code,
  );
}

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;

/** `url` with its password replaced by "***", for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    // A password given as a query parameter (?password=) is as secret as one before the @.
    if (parsed.searchParams.has("password")) parsed.searchParams.set("password", "***");
    return parsed.toString();
  } catch {
    // Not a URL we can parse: show none of it rather than risk a password.
    return "(a database URL that could not be parsed)";
  }
}

/** A connection URL without its password, to be kept (the password comes from elsewhere). */
export function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = "";
    parsed.searchParams.delete("password");
    return parsed.toString();
  } catch {
    throw new SwarmError(
      `${redactUrl(url)} is not a database URL of the form postgres://role@host:port/database`,
    );
  }
}

/** The password held by a connection URL, if any (so that messages can be scrubbed of it). */
export function urlPassword(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    const password = parsed.password || parsed.searchParams.get("password") || "";
    return password ? decodeURIComponent(password) : undefined;
  } catch {
    return undefined;
  }
}

// Node's socket errors and the driver's own words for a connection that went away.
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ENOENT", // a unix socket that is not there while the server is down
  "ENETDOWN",
  "EHOSTDOWN",
  "ENETRESET",
  "EADDRNOTAVAIL",
]);
const DRIVER_WORDS =
  /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|timeout expired|Query read timeout|Connection ended|write after end/i;
// SQLSTATEs worth the same statement again later: 57014 a statement cancelled (by an
// administrator, or a statement or lock timeout, 55P03), 57P01–57P05 a server shutting
// down, starting or ending an idle session, 25P03 an idle transaction ended, 25006 a
// write reaching a standby after a failover, 40001 and 40P01 a serialization failure or
// deadlock. Classes 08 (connection), 53 (resources: too many connections, a full disk)
// and 58 (the server's system errors) are all passing.
const PASSING_STATES = new Set([
  "57014",
  "55P03",
  "57P01",
  "57P02",
  "57P03",
  "57P04",
  "57P05",
  "25P03",
  "25006",
  "40001",
  "40P01",
]);
const PASSING_CLASSES = ["08", "53", "58"];

/**
 * Whether `error` means the database was unreachable, went away or could not answer for
 * now, as opposed to a refusal of the statement itself.
 */
export function isUnreachable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof SwarmUnreachableError) return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") {
    if (SOCKET_CODES.has(code) || PASSING_STATES.has(code)) return true;
    if (PASSING_CLASSES.some((c) => code.startsWith(c))) return true;
  }
  return DRIVER_WORDS.test(error.message);
}

/**
 * `error` as the swarm's own error: SwarmUnreachableError when it is worth retrying,
 * SwarmError otherwise; the message names the database by its redacted URL and never
 * holds its password.
 */
export function swarmError(error: unknown, url: string, doing: string): SwarmError {
  if (error instanceof SwarmError) return error;
  const password = urlPassword(url);
  let detail = error instanceof Error ? error.message : String(error);
  if (password) detail = detail.split(password).join("***");
  const where = redactUrl(url);
  if (isUnreachable(error)) {
    const code = (error as { code?: unknown }).code;
    return new SwarmUnreachableError(
      `the swarm's database ${where} is unreachable (${doing}): ${detail}; check that its server runs and that the URL's host and port are right`,
      typeof code === "string" ? code : undefined,
    );
  }
  if (
    /password authentication failed|client password must be a string|no password given/.test(detail)
  )
    return new SwarmError(
      `the swarm's database ${where} refused ${doing}: ${detail}; give the role's password in PGPASSWORD or a line of ~/.pgpass (not in the URL, which other users of the machine can see)`,
    );
  return new SwarmError(`the swarm's database ${where} refused ${doing}: ${detail}`);
}
