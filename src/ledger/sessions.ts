import type { Db } from "./db.js";

/** The events an orchestrator records as it takes a run and lets it go (`setOwner`). */
export const SESSION_START = "session-start";
export const SESSION_END = "session-end";

/** A stretch of time in which an orchestrator drove the run, in ms since the epoch. */
export interface Session {
  start: number;
  end: number;
}

/**
 * When the run's sessions ran: each from its `session-start` to its `session-end`. One
 * killed before it recorded its end ends at the last thing it recorded; the last one, if it
 * has not ended, at `now`. Empty for a run recorded before sessions were: its whole span
 * counts then, as it did.
 */
export function runSessions(db: Db, runId: number, now = Date.now()): Session[] {
  const marks = db
    .prepare("SELECT kind, at FROM events WHERE run_id = ? AND kind IN (?, ?) ORDER BY at, id")
    .all(runId, SESSION_START, SESSION_END) as { kind: string; at: number }[];
  if (marks.length === 0) return [];
  // The run's first session began as it was made (`run`, `try`), a little before it took
  // the run; in a run made by an older autoresearch, its sessions before the first one
  // recorded are taken as one, which ends at the last thing recorded before that.
  const created = db.prepare("SELECT created_at FROM runs WHERE id = ?").pluck().get(runId) as
    | number
    | undefined;
  const starts = marks.filter((m) => m.kind === SESSION_START).map((m) => m.at);
  if (created !== undefined && (starts.length === 0 || created < starts[0]!))
    starts.unshift(created);
  return starts.map((start, i) => {
    const next = starts[i + 1] ?? Number.POSITIVE_INFINITY;
    const ended = marks.find((m) => m.kind === SESSION_END && m.at >= start && m.at < next);
    if (ended) return { start, end: ended.at };
    if (next === Number.POSITIVE_INFINITY) return { start, end: Math.max(start, now) };
    return { start, end: lastRecorded(db, runId, start, next) ?? start };
  });
}

/** The latest moment in [from, before) at which the run recorded an event or a replicate. */
function lastRecorded(db: Db, runId: number, from: number, before: number): number | null {
  const row = db
    .prepare(
      `SELECT max(t) AS t FROM (
         SELECT at AS t FROM events WHERE run_id = @run
         UNION ALL SELECT r.started_at FROM replicates r JOIN trials x ON x.id = r.trial_id
           WHERE x.run_id = @run
         UNION ALL SELECT r.finished_at FROM replicates r JOIN trials x ON x.id = r.trial_id
           WHERE x.run_id = @run)
       WHERE t >= @from AND t < @before`,
    )
    .get({ run: runId, from, before }) as { t: number | null };
  return row.t;
}

/**
 * How much of [from, to] lies within `sessions`, in ms: what a slot could have been busy
 * for. All of it when no sessions are recorded.
 */
export function timeWithin(sessions: readonly Session[], from: number, to: number): number {
  if (sessions.length === 0) return Math.max(0, to - from);
  let ms = 0;
  for (const s of sessions) ms += Math.max(0, Math.min(to, s.end) - Math.max(from, s.start));
  return ms;
}
