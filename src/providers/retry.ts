import { APICallError } from "ai";
import { pause } from "../util/clock.js";

export interface RetryOptions {
  /** Attempts after the first. */
  retries: number;
  /** The first delay; each further one doubles, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  signal?: AbortSignal;
  /** Told before each wait, for logs and tests. */
  onRetry?: (attempt: number, delayMs: number, error: unknown) => void;
}

export const DEFAULT_RETRY: RetryOptions = { retries: 5, baseDelayMs: 1000, maxDelayMs: 60_000 };

/** HTTP statuses worth another try: timeouts, conflicts, rate limits, server errors, overload. */
const RETRYABLE_STATUS = new Set([408, 409, 425, 429, 500, 502, 503, 504, 529]);

/** The HTTP status of a provider error, if it has one. */
export function statusOf(error: unknown): number | null {
  return APICallError.isInstance(error) ? (error.statusCode ?? null) : null;
}

/**
 * True for errors a later attempt may not meet: rate limits, overload (HTTP 529 or an
 * `overloaded_error` in the stream), server errors, timeouts and dropped connections.
 */
export function isRetryable(error: unknown): boolean {
  const status = statusOf(error);
  if (status !== null) return RETRYABLE_STATUS.has(status);
  const text = describe(error).toLowerCase();
  return /overloaded|rate.?limit|timeout|timed out|econnreset|econnrefused|socket hang up|fetch failed|terminated/.test(
    text,
  );
}

/** The server's requested wait (retry-after, retry-after-ms), in milliseconds. */
function retryAfterMs(error: unknown): number | null {
  if (!APICallError.isInstance(error)) return null;
  const headers = error.responseHeaders ?? {};
  const ms = Number.parseFloat(headers["retry-after-ms"] ?? "");
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const after = headers["retry-after"];
  if (after === undefined) return null;
  const seconds = Number.parseFloat(after);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(after);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

export function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (error && typeof error === "object") return JSON.stringify(error);
  return String(error);
}

/**
 * Runs `call` until it succeeds, a non-retryable error occurs, or the retries are used
 * up. Waits grow exponentially with full jitter (a random share of the cap), so that
 * many researchers hitting one limit do not retry in step; a server's retry-after wins.
 */
export async function withRetries<T>(call: () => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (options.signal?.aborted || attempt >= options.retries || !isRetryable(error)) throw error;
      const cap = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** attempt);
      const delay = retryAfterMs(error) ?? Math.random() * cap;
      options.onRetry?.(attempt + 1, delay, error);
      await pause(delay, options.signal);
    }
  }
}
