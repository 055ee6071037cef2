/**
 * Milliseconds on a clock that only moves forward. Durations, timeouts and deadlines are
 * measured with it, so that the wall clock jumping (NTP, a suspended laptop, a changed
 * time zone setting) neither ends a run early nor records a negative duration. Wall-clock
 * time (Date.now) is only for timestamps in the records.
 */
export const monotonic = (): number => Math.floor(performance.now());

/** Waits `ms`, or less when `signal` aborts first (it resolves then, never rejects). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
