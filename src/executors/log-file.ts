import { closeSync, ftruncateSync, writeSync } from "node:fs";
import {
  appendRegular,
  createFresh,
  type FileText,
  isRefusal,
  openRegular,
  type Refusal,
  readFully,
  readTail,
} from "../util/safe-file.js";

/**
 * A replicate's log is a file, local or on a cluster, so the output survives the
 * orchestrator: a replicate that finishes while no harness watches still leaves its metric
 * for recovery to read back. It is bounded as its first half of `limit` bytes, a note, and
 * its last half, because the metrics are printed last: as it is written, by the log writer
 * (libexec/log-writer.cjs) of a local replicate, and after the fact by `capLog`, for a
 * cluster job's log and for whatever reaches a log some other way. The replicate knows the
 * log's path (AR_PROCESS), so every open of it goes through util/safe-file: a link or a
 * special file put in its place is never followed, cut or read.
 */

const NOTE = /^\n\[autoresearch\] (\d+) bytes of output omitted \(log_limit\)\n/;
const NOTE_MAX = 80;

export interface CappedLog {
  /** Every byte the process wrote, kept or not. */
  bytes: number;
  truncated: boolean;
  /** Set when the path held something the harness does not touch (a link, a FIFO). */
  refused?: Refusal;
}

/**
 * Caps the log at `path` to `limit` bytes, keeping its head and tail. Stateless: the count
 * in a note left by an earlier cap is carried on, so capping a growing file again and
 * again (or after a restart) reports the total. The process may still be appending (its
 * descriptor is O_APPEND, so it goes on at the new end): what it writes between the read
 * and the rewrite is lost, which only ever happens to a log already past its limit.
 */
export function capLog(path: string, limit: number, slack = 0): CappedLog {
  const opened = openRegular(path, "update");
  if (opened === null) return { bytes: 0, truncated: false };
  if (isRefusal(opened)) return { bytes: 0, truncated: false, refused: opened };
  const { fd, size } = opened;
  const half = Math.floor(limit / 2);
  try {
    const probe = Buffer.alloc(NOTE_MAX);
    const got = readFully(fd, probe, half);
    const note = NOTE.exec(probe.subarray(0, got).toString("latin1"));
    const before = note ? Number(note[1]) : 0;
    const body = size - (note ? note[0].length : 0);
    if (body <= limit + slack) return { bytes: body + before, truncated: before > 0 };
    const head = Buffer.alloc(half);
    readFully(fd, head, 0);
    const tail = Buffer.alloc(limit - half);
    readFully(fd, tail, size - tail.length);
    const dropped = before + body - limit;
    const marker = Buffer.from(`\n[autoresearch] ${dropped} bytes of output omitted (log_limit)\n`);
    rewrite(fd, Buffer.concat([head, marker, tail]));
    return { bytes: body + before, truncated: true };
  } catch {
    // A log that cannot be read or rewritten (a full disk) stays as it is; the outcome
    // is still recorded.
    return { bytes: size, truncated: false };
  } finally {
    closeSync(fd);
  }
}

/**
 * Rewrites the file through the descriptor that was checked, never by its name again
 * (which could by now be a link). Written over its start, then cut, so a reader never
 * finds it empty.
 */
function rewrite(fd: number, content: Buffer): void {
  let done = 0;
  while (done < content.length) done += writeSync(fd, content, done, content.length - done, done);
  ftruncateSync(fd, content.length);
}

/**
 * The log as capping left it (head, note, tail: at most `limit` bytes and the note), or
 * its last that many bytes if it could not be capped. Null when there is none.
 */
export function readLog(path: string, limit: number): FileText | Refusal | null {
  return readTail(path, limit + NOTE_MAX);
}

/**
 * Opens a fresh, empty log for the log writer, which places every write itself (so not in
 * append mode, where Linux ignores the position); the caller closes its copy after
 * spawning. Whatever an earlier replicate left at this path (a link planted for the harness
 * to truncate) is removed, not opened. Throws when the log cannot be created.
 */
export function openLog(path: string): number {
  return createFresh(path);
}

/**
 * A line of the harness's own in the log, clearly marked, for example why the process was
 * ended. A full disk must not stop the harness from recording the outcome, so a failed
 * write is dropped, and so is one to a log that is no longer a regular file.
 */
export function noteLog(path: string, text: string): void {
  appendRegular(path, `\n[autoresearch] ${text}\n`);
}
