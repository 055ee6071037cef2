import type pg from "pg";
import type { SwarmError } from "../errors.js";
import { settlesWithin } from "../util/clock.js";
import type { SwarmConnection } from "./connection.js";
import { INCUMBENT_CHANNEL, incumbents } from "./incumbent.js";
import { type LineHead, lineHead } from "./line.js";
import type { Incumbent } from "./types.js";

/** How long closing waits for the server to end the listening connection before cutting it. */
const END_WAIT_MS = 2_000;

/** How the incumbent watch listens and polls. */
export interface WatchOptions {
  /** Versions already known by class; a class is reported once it moves past its own. */
  known?: Readonly<Record<string, number>>;
  /** Poll period while LISTEN is down, in ms. Default 1,000 (a new incumbent within 2 s). */
  pollMs?: number;
  /** Poll period while LISTEN works, a safety net for a lost notification. Default 15,000. */
  safetyPollMs?: number;
  /** Told of a failed read or a lost listening connection; the watch goes on regardless. */
  onError?: (error: SwarmError) => void;
}

/** A running watch of the incumbents. Contract: `close` stops every timer and connection. */
export interface IncumbentWatch {
  /** Whether notifications arrive now (false: polling every `pollMs`). */
  readonly listening: boolean;
  close(): Promise<void>;
}

/**
 * Calls `onChange` with each hardware class's incumbent whenever its version moves past
 * the one last reported (first with every class that has one, unless `known` says it is
 * known). Woken by NOTIFY on a connection of its own; while that connection is down it
 * polls every `pollMs` and reconnects with backoff. Notifications carry nothing trusted:
 * every report comes from reading the table.
 */
export async function watchIncumbents(
  db: SwarmConnection,
  onChange: (incumbent: Incumbent) => void,
  options: WatchOptions = {},
): Promise<IncumbentWatch> {
  const seen = new Map(Object.entries(options.known ?? {}));
  return watchSwarm(
    db,
    async (closed) => {
      for (const inc of await incumbents(db)) {
        if (closed() || inc.version <= (seen.get(inc.hardwareClass) ?? 0)) continue;
        seen.set(inc.hardwareClass, inc.version);
        onChange(inc);
      }
    },
    options,
  );
}

/**
 * Calls `onChange` with the line's head whenever its version moves past `known` (or the
 * last one reported), the same way as `watchIncumbents`.
 */
export async function watchLine(
  db: SwarmConnection,
  onChange: (head: LineHead) => void,
  options: Omit<WatchOptions, "known"> & { known?: number } = {},
): Promise<IncumbentWatch> {
  let seen = options.known ?? -1;
  return watchSwarm(
    db,
    async (closed) => {
      const head = await lineHead(db);
      if (closed() || !head || head.version <= seen) return;
      seen = head.version;
      onChange(head);
    },
    options,
  );
}

/** Runs `read` on every NOTIFY of the swarm's channel, and polls while that is down. */
async function watchSwarm(
  db: SwarmConnection,
  read: (closed: () => boolean) => Promise<void>,
  options: WatchOptions | Omit<WatchOptions, "known">,
): Promise<IncumbentWatch> {
  const pollMs = options.pollMs ?? 1_000;
  const safetyMs = options.safetyPollMs ?? 15_000;
  let client: pg.Client | undefined;
  let listening = false;
  let closed = false;
  let lastCheck = 0;
  let reconnectMs = 500;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;

  // One read at a time; a wake-up during a read makes one more read after it.
  const check = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        lastCheck = Date.now();
        try {
          await read(() => closed);
        } catch (error) {
          options.onError?.(error as SwarmError);
        }
      } while (again && !closed);
    })().finally(() => {
      running = undefined;
    });
    return running;
  };

  const lost = (which: pg.Client, error?: unknown) => {
    if (which !== client) return;
    client = undefined;
    listening = false;
    which.end().catch(() => undefined);
    if (error) options.onError?.(db.failure(error, "listening for a new incumbent or line head"));
    if (!closed) reconnectTimer = setTimeout(listen, reconnectMs);
    reconnectMs = Math.min(reconnectMs * 2, 10_000);
  };

  async function listen(): Promise<void> {
    reconnectTimer = undefined;
    if (closed) return;
    const c = db.newClient();
    client = c;
    c.on("notification", () => void check());
    c.on("error", (error) => lost(c, error));
    c.on("end", () => lost(c));
    try {
      await c.connect();
      await c.query(`LISTEN ${INCUMBENT_CHANNEL}`);
      if (client !== c) return;
      listening = true;
      reconnectMs = 500;
      // What moved while no one listened.
      void check();
    } catch (error) {
      lost(c, error);
    }
  }

  await listen();
  await check();
  const timer = setInterval(() => {
    if (!closed && (!listening || Date.now() - lastCheck >= safetyMs)) void check();
  }, pollMs);
  timer.unref();

  return {
    get listening() {
      return listening;
    },
    async close() {
      closed = true;
      clearInterval(timer);
      if (reconnectTimer) clearTimeout(reconnectTimer);
      const c = client;
      client = undefined;
      listening = false;
      // A frozen server answers neither the goodbye nor a read in flight: after a moment
      // the connection is cut, and the read ends with the pool's connections.
      await settlesWithin(Promise.all([c?.end().catch(() => undefined), running]), END_WAIT_MS);
      c?.connection.stream.destroy();
    },
  };
}
