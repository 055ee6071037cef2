/**
 * Turns the first Ctrl-C (or SIGTERM) into a clean stop: the signal aborts, running
 * replicates are ended and recorded as interrupted. A second one exits at once; the
 * next `resume` cleans up whatever was left.
 */
export function stopOnSignals(onStop: (signal: NodeJS.Signals) => void = () => undefined): {
  signal: AbortSignal;
  dispose: () => void;
} {
  const controller = new AbortController();
  const handler = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
    onStop(signal);
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    },
  };
}
