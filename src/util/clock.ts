/**
 * Milliseconds on a clock that only moves forward. Durations, timeouts and deadlines are
 * measured with it, so that the wall clock jumping (NTP, a suspended laptop, a changed
 * time zone setting) neither ends a run early nor records a negative duration. Wall-clock
 * time (Date.now) is only for timestamps in the records.
 */
export const monotonic = (): number => Math.floor(performance.now());

/** Whether `work` settles (either way) within `ms`; the timer keeps nothing alive after. */
export function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = work.then(
    () => true,
    () => true,
  );
  return Promise.race([settled, late]).finally(() => clearTimeout(timer));
}

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
