/**
 * Milliseconds on a clock that only moves forward. Durations, timeouts and deadlines are
 * measured with it, so that the wall clock jumping (NTP, a suspended laptop, a changed
 * time zone setting) neither ends a run early nor records a negative duration. Wall-clock
 * time (Date.now) is only for timestamps in the records.
 */
export const monotonic = (): number => Math.floor(performance.now());
