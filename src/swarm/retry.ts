import { monotonic, pause } from "../util/clock.js";
import { SwarmUnreachableError } from "./errors.js";

/** How `retry` waits between attempts. */
export interface RetryOptions {
  /** First wait in ms; each later wait doubles, up to `maxDelayMs`. Default 200. */
  baseDelayMs?: number;
  /** Longest single wait in ms. Default 10,000. */
  maxDelayMs?: number;
  /** Give up (rethrowing the last error) once this many ms have passed. Default: never. */
  deadlineMs?: number;
  /** Give up after this many attempts. Default: no limit. */
  attempts?: number;
  /** Stops waiting: the last error is rethrown at once. */
  signal?: AbortSignal;
  /**
   * Asked after each failure: the moment (on `monotonic`'s clock) at which the retries end,
   * or null for none yet. Once it has passed the last error is rethrown; before, the wait
   * for the next attempt ends there at the latest.
   */
  until?: () => number | null;
  /** Told of each failure that will be retried, with the wait before the next attempt. */
  onRetry?: (error: SwarmUnreachableError, attempt: number, delayMs: number) => void;
  /** Random numbers in [0, 1) for the jitter; tests pass a fixed one. */
  random?: () => number;
}

/**
 * Runs `work` until it succeeds, retrying only when it throws SwarmUnreachableError, with
 * exponential backoff and full jitter (so that a thousand hosts that lost the database at
 * the same moment do not all come back at the same moment). Any other error is rethrown
 * at once: a refusal does not become acceptable by asking again.
 *
 * An attempt that failed may still have landed (the answer lost with the connection, or
 * a query timeout while the server went on), so `work` must be safe to run twice. The
 * client's calls are: an upload lands once per uid, a claim given the trial's uid answers
 * the claim it already holds, a compare-and-swap that landed answers ok again. Two are
 * not: a claim without a uid is refused by the host's own claim, and a second release
 * answers false.
 */
export async function retry<T>(work: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const base = options.baseDelayMs ?? 200;
  const max = options.maxDelayMs ?? 10_000;
  const random = options.random ?? Math.random;
  const started = monotonic();
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!(error instanceof SwarmUnreachableError)) throw error;
      if (options.attempts !== undefined && attempt >= options.attempts) throw error;
      if (options.signal?.aborted) throw error;
      const ceiling = Math.min(max, base * 2 ** (attempt - 1));
      // Never less than a tenth of the ceiling: a zero wait would spin against a dead server.
      let delay = Math.max(ceiling / 10, ceiling * random());
      const ends = [
        options.deadlineMs === undefined ? null : started + options.deadlineMs,
        options.until?.() ?? null,
      ].filter((t) => t !== null);
      if (ends.length) {
        const left = Math.min(...ends) - monotonic();
        if (left <= 0) throw error;
        delay = Math.min(delay, left);
      }
      options.onRetry?.(error, attempt, delay);
      await pause(delay, options.signal);
    }
  }
}

/**
 * How long a call still in flight when its caller stops may answer: a database that
 * answers is not cut off mid-answer, and a hung one does not hold the stop.
 */
export const STOP_GRACE_MS = 2_000;

/**
 * `call`'s answer, or, once `signal` has aborted and `graceMs` passed without one, a
 * SwarmUnreachableError. A server that hangs (its connection open, nothing answering)
 * answers only at the connection's query timeout, half a minute on; a stop does not wait
 * for that. The call is left to land or not, so it must be safe to make again, as what
 * `retry` runs is.
 */
export function answeredBeforeStop<T>(
  call: Promise<T>,
  signal: AbortSignal,
  graceMs = STOP_GRACE_MS,
  /** How the error says when the answer was given up on. */
  when = `within ${graceMs / 1000} s of the stop`,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const giveUp = () => {
      timer = setTimeout(
        () => reject(new SwarmUnreachableError(`the swarm's database did not answer ${when}`)),
        graceMs,
      );
    };
    if (signal.aborted) giveUp();
    else signal.addEventListener("abort", giveUp, { once: true });
    call.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal.removeEventListener("abort", giveUp);
    });
  });
}
