import { closeSync, openSync, writeSync } from "node:fs";

/**
 * Writes a process's output to a file, bounded by `limit` bytes: the first half is written
 * as it arrives (so the log can be watched live), the last half is held in memory and
 * written at the end, because the metrics are printed last.
 */
export class LogSink {
  private readonly fd: number;
  private readonly headLimit: number;
  private readonly tailLimit: number;
  private headBytes = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private dropped = 0;
  /** Every byte the process wrote, kept or not. */
  total = 0;

  constructor(path: string, limit: number) {
    this.fd = openSync(path, "w");
    this.headLimit = Math.floor(limit / 2);
    this.tailLimit = limit - this.headLimit;
  }

  write(chunk: Buffer): void {
    this.total += chunk.length;
    this.append(chunk);
  }

  /** A line of the harness's own, clearly marked, for example why the process was ended. */
  note(text: string): void {
    this.append(Buffer.from(`\n[autoresearch] ${text}\n`));
  }

  private append(chunk: Buffer): void {
    let rest = chunk;
    if (this.headBytes < this.headLimit) {
      const take = Math.min(rest.length, this.headLimit - this.headBytes);
      writeSync(this.fd, rest, 0, take);
      this.headBytes += take;
      rest = rest.subarray(take);
    }
    if (rest.length === 0) return;
    this.tail.push(rest);
    this.tailBytes += rest.length;
    while (this.tailBytes > this.tailLimit) {
      const first = this.tail[0]!;
      const excess = this.tailBytes - this.tailLimit;
      if (first.length <= excess) {
        this.tail.shift();
        this.tailBytes -= first.length;
        this.dropped += first.length;
      } else {
        this.tail[0] = first.subarray(excess);
        this.tailBytes -= excess;
        this.dropped += excess;
      }
    }
  }

  get truncated(): boolean {
    return this.dropped > 0;
  }

  close(): void {
    if (this.dropped > 0)
      writeSync(this.fd, `\n[autoresearch] ${this.dropped} bytes of output omitted (log_limit)\n`);
    for (const part of this.tail) writeSync(this.fd, part);
    this.tail = [];
    closeSync(this.fd);
  }
}
