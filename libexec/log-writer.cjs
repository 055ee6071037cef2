// @ts-check
/**
 * Stands between a replicate and its log: `node log-writer.cjs LIMIT`, the replicate's
 * output on stdin and the log, opened for writing (not appending), as stdout. The log never
 * holds more than LIMIT bytes of output: its first half as it came, then a note of what
 * was left out, then the last half, rewritten in place as more arrives. The file is the
 * same one `capLog` (src/executors/log-file.ts) shapes, so either may read what the other
 * wrote.
 *
 * It is a process of its own, not part of the orchestrator, so that output written while no
 * orchestrator watches still reaches the log (recovery reads results back from it), and it
 * lives outside the replicate's process group, so that ending the group does not lose the
 * last lines on their way. It ends when every writer of its stdin has closed it, or on
 * SIGTERM, having written what it holds. Its stdin has no other reader: it never stops
 * reading, even when the disk is full, so the replicate is never blocked by its log.
 */
const { ftruncateSync, writeSync } = require("node:fs");

const limit = Number(process.argv[2]);
if (!Number.isSafeInteger(limit) || limit < 2) {
  process.stderr.write("usage: log-writer.cjs LIMIT (bytes, at least 2)\n");
  process.exit(2);
}
const head = Math.floor(limit / 2);
const tailSize = limit - head;
/**
 * How often at most a log past its limit is rewritten while output keeps coming: every
 * 200 ms, or less often for a tail so large that rewriting it would cost more than a few
 * percent of a disk's time (about 64 MB a second at most).
 */
const REWRITE_EVERY_MS = Math.max(200, (tailSize / (64 * 1024 * 1024)) * 1000);

/** Every byte received. */
let total = 0;
/** The last `tailSize` bytes received, as a ring that `ringEnd` points into. */
let ring = /** @type {Buffer | null} */ (null);
let ringEnd = 0;
let dirty = false;
let timer = /** @type {NodeJS.Timeout | null} */ (null);

/** Writes `data` at `position` of the log; a full disk or a size limit loses it, nothing more. */
function put(data, position) {
  try {
    let done = 0;
    while (done < data.length)
      done += writeSync(1, data, done, data.length - done, position + done);
    return true;
  } catch {
    return false;
  }
}

/** Keeps the last `tailSize` bytes of `chunk` in the ring. */
function remember(chunk) {
  ring ??= Buffer.alloc(tailSize);
  let data = chunk.length > tailSize ? chunk.subarray(chunk.length - tailSize) : chunk;
  while (data.length > 0) {
    const n = Math.min(data.length, tailSize - ringEnd);
    data.copy(ring, ringEnd, 0, n);
    ringEnd = (ringEnd + n) % tailSize;
    data = data.subarray(n);
  }
}

/** The head as written, the note, the ring in order; cut to that length. */
function rewrite() {
  dirty = false;
  if (!ring) return;
  const note = Buffer.from(
    `\n[autoresearch] ${total - limit} bytes of output omitted (log_limit)\n`,
  );
  const tail = Buffer.concat([ring.subarray(ringEnd), ring.subarray(0, ringEnd)]);
  const body = Buffer.concat([note, tail]);
  if (put(body, head)) {
    try {
      ftruncateSync(1, head + body.length);
    } catch {}
  }
}

function take(chunk) {
  const before = total;
  total += chunk.length;
  // Bytes before `head` stay in the head; only later ones can be part of the tail.
  if (total > head) remember(before >= head ? chunk : chunk.subarray(head - before));
  if (total <= limit) {
    put(chunk, before);
    return;
  }
  // Past the limit: what the head still lacks goes in place, the rest waits in the ring.
  if (before < head) put(chunk.subarray(0, head - before), before);
  dirty = true;
  timer ??= setTimeout(() => {
    timer = null;
    rewrite();
  }, REWRITE_EVERY_MS);
}

function finish() {
  if (timer) clearTimeout(timer);
  if (dirty) rewrite();
  process.exit(0);
}

process.stdin.on("data", take);
process.stdin.on("end", finish);
process.stdin.on("error", finish);
process.on("SIGTERM", finish);
process.on("SIGINT", () => undefined);
process.on("SIGHUP", () => undefined);
