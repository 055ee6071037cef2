import { resolve } from "node:path";
import { InvalidArgumentError } from "commander";
import type { Emit } from "../orchestrator/events.js";
import { stopOnSignals } from "../orchestrator/stop.js";
import { createTerminalDisplay } from "../report/terminal.js";

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`must be a whole number ≥ 1, got "${value}"`);
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`must be a number > 0, got "${value}"`);
  return n;
}

export function taskRoot(dir: string | undefined): string {
  return resolve(dir ?? process.cwd());
}

/** The display and the Ctrl-C handling every command that drives a run shares. */
export function session(): { emit: Emit; signal: AbortSignal; close: () => void } {
  const display = createTerminalDisplay(process.stdout, process.stdout.isTTY === true);
  const stop = stopOnSignals(() =>
    process.stderr.write(
      "\nstopping: ending the running replicate (Ctrl-C again to quit at once)\n",
    ),
  );
  return {
    emit: display.emit,
    signal: stop.signal,
    close: () => {
      display.close();
      stop.dispose();
    },
  };
}
