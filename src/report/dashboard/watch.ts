import type { Ledger } from "../../ledger/ledger.js";
import { type Cursor, runView, tablePayload, trialViews } from "./views.js";

/** A live page of one run: where its table stands, and how to send it an event. */
export interface Subscriber {
  tag: string;
  cursor: Cursor;
  send(event: string, data: string): void;
  /** The last summary sent, so that an unchanged one is not sent again. */
  lastSummary?: string;
}

/**
 * Watches the ledger for commits by other connections (the orchestrator) with
 * `PRAGMA data_version`, which costs next to nothing and takes no lock, and pushes what
 * changed to the pages that follow a run. It never writes and holds no transaction open.
 */
export class LedgerWatch {
  private last: number;
  private readonly subscribers = new Set<Subscriber>();
  private readonly timer: NodeJS.Timeout;
  private failing = false;

  constructor(
    private readonly ledger: Ledger,
    pollMs = 500,
  ) {
    this.last = this.version();
    this.timer = setInterval(() => this.poll(), pollMs);
    this.timer.unref();
  }

  /** Changes whenever another connection has committed to the ledger. */
  version(): number {
    return this.ledger.db.pragma("data_version", { simple: true }) as number;
  }

  /** Follows a run from `sub.cursor`; sends what changed since at once. Returns the unsubscribe. */
  subscribe(sub: Subscriber): () => void {
    this.subscribers.add(sub);
    this.push(sub);
    return () => this.subscribers.delete(sub);
  }

  get size(): number {
    return this.subscribers.size;
  }

  poll(): void {
    try {
      const version = this.version();
      if (version === this.last) return;
      this.last = version;
      for (const sub of this.subscribers) this.push(sub);
      this.failing = false;
    } catch (error) {
      // A busy or briefly unreadable ledger is retried at the next tick; say so once.
      if (!this.failing)
        process.stderr.write(`dashboard: cannot read the ledger: ${(error as Error).message}\n`);
      this.failing = true;
    }
  }

  private push(sub: Subscriber): void {
    const run = this.ledger.run(sub.tag);
    if (!run) return;
    const { trials, cursor } = trialViews(this.ledger.db, run.id, sub.cursor);
    const summary = runView(this.ledger, run);
    const key = JSON.stringify(summary);
    if (trials.length === 0 && key === sub.lastSummary) return;
    sub.cursor = cursor;
    sub.lastSummary = key;
    sub.send("trials", tablePayload(trials, summary, cursor));
  }

  close(): void {
    clearInterval(this.timer);
    this.subscribers.clear();
  }
}
