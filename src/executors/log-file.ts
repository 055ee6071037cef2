import { appendFileSync, closeSync, openSync, readSync, statSync, writeFileSync } from "node:fs";

/**
 * A replicate writes its output straight into its log file, local or on a cluster, so the
 * output survives the orchestrator: a replicate that finishes while no harness watches
 * still leaves its metric for recovery to read back. The file is bounded by rewriting it
 * as its first half of `limit` bytes, a note, and its last half, because the metrics are
 * printed last.
 */

const NOTE = /^\n\[autoresearch\] (\d+) bytes of output omitted \(log_limit\)\n/;
const NOTE_MAX = 80;

export interface CappedLog {
  /** Every byte the process wrote, kept or not. */
  bytes: number;
  truncated: boolean;
}

/**
 * Caps the log at `path` to `limit` bytes, keeping its head and tail. Stateless: the count
 * in a note left by an earlier cap is carried on, so capping a growing file again and
 * again (or after a restart) reports the total. The process may still be appending (its
 * descriptor is O_APPEND, so it goes on at the new end): what it writes between the read
 * and the rewrite is lost, which only ever happens to a log already past its limit.
 */
export function capLog(path: string, limit: number, slack = 0): CappedLog {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return { bytes: 0, truncated: false };
  }
  const half = Math.floor(limit / 2);
  let fd: number | null = null;
  try {
    fd = openSync(path, "r");
    const probe = Buffer.alloc(NOTE_MAX);
    const got = readSync(fd, probe, 0, NOTE_MAX, half);
    const note = NOTE.exec(probe.subarray(0, got).toString("latin1"));
    const before = note ? Number(note[1]) : 0;
    const body = size - (note ? note[0].length : 0);
    if (body <= limit + slack) return { bytes: body + before, truncated: before > 0 };
    const head = Buffer.alloc(half);
    readSync(fd, head, 0, half, 0);
    const tail = Buffer.alloc(limit - half);
    readSync(fd, tail, 0, tail.length, size - tail.length);
    const dropped = before + body - limit;
    const marker = Buffer.from(`\n[autoresearch] ${dropped} bytes of output omitted (log_limit)\n`);
    writeFileSync(path, Buffer.concat([head, marker, tail]));
    return { bytes: body + before, truncated: true };
  } catch {
    // A log that cannot be read or rewritten (a full disk) stays as it is; the outcome
    // is still recorded.
    return { bytes: size, truncated: false };
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/**
 * Opens a fresh, empty log for a process to write into, in append mode so that capping can
 * rewrite it underneath; the caller closes its copy after spawning.
 */
export function openLog(path: string): number {
  writeFileSync(path, "");
  return openSync(path, "a");
}

/**
 * A line of the harness's own in the log, clearly marked, for example why the process was
 * ended. A full disk must not stop the harness from recording the outcome, so a failed
 * write is dropped.
 */
export function noteLog(path: string, text: string): void {
  try {
    appendFileSync(path, `\n[autoresearch] ${text}\n`);
  } catch {}
}
