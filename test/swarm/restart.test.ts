import { createServer, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initSwarm } from "../../src/orchestrator/swarm.js";
import { SwarmConnection } from "../../src/swarm/connection.js";
import {
  answeredBeforeStop,
  type Incumbent,
  retry,
  SwarmClient,
  SwarmUnreachableError,
} from "../../src/swarm/index.js";
import { watchLine } from "../../src/swarm/watch.js";
import { makeRepo, sh, tempDir } from "../helpers.js";
import { type SwarmFixture, swarmFixture } from "./fixture.js";

let swarm: SwarmFixture;
let a: SwarmClient;
beforeAll(async () => {
  swarm = await swarmFixture(["host_a"]);
  a = await swarm.host("host_a", "cpu", { connectTimeoutMs: 1_000 });
});
afterAll(() => swarm?.close());

const password = (url: string) => decodeURIComponent(new URL(url).password);

describe("a host while the database is stopped and started again", () => {
  it("gets SwarmUnreachableError, without the password, and retry goes on once it is back", async () => {
    const first = await a.recordTrial({
      uid: "t1",
      hardwareClass: "cpu",
      verdict: "keep",
      metric: 2,
    });
    const seen: Incumbent[] = [];
    const watch = await a.watchIncumbents((i) => seen.push(i), { pollMs: 200 });
    swarm.cluster.stop("fast");
    try {
      for (const call of [
        () => a.heartbeat(),
        () => a.history(),
        () => a.claim({ diffHash: "x" }, 60),
      ]) {
        const error = await call().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(SwarmUnreachableError);
        expect((error as Error).message).toContain("is unreachable");
        expect((error as Error).message).toContain("host_a:***@127.0.0.1");
        expect((error as Error).message).not.toContain(password(swarm.hostUrl("host_a")));
      }
      await expect(SwarmClient.connect(swarm.hostUrl("host_a"))).rejects.toBeInstanceOf(
        SwarmUnreachableError,
      );
      expect(watch.listening).toBe(false);

      // The upload of a trial that had landed, retried while the database is away.
      const retries: number[] = [];
      setTimeout(() => swarm.cluster.start(), 1_500);
      const again = await retry(
        () => a.recordTrial({ uid: "t1", hardwareClass: "cpu", verdict: "keep", metric: 2 }),
        {
          baseDelayMs: 100,
          maxDelayMs: 500,
          deadlineMs: 30_000,
          onRetry: (_, n) => retries.push(n),
        },
      );
      expect(retries.length).toBeGreaterThan(0);
      expect(again).toEqual({ id: first.id, created: false });
      expect((await a.history()).trials.filter((t) => t.uid === "t1")).toHaveLength(1);

      // The watch listens again and reports what moves now.
      expect(await a.cas("cpu", 0, first.id)).toEqual({ ok: true, version: 1 });
      const deadline = Date.now() + 5_000;
      while (seen.length === 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      expect(seen.map((i) => i.version)).toEqual([1]);
    } finally {
      swarm.cluster.start();
      await watch.close();
    }
  });

  it("retry gives up at its deadline with the last SwarmUnreachableError, and not on a refusal", async () => {
    swarm.cluster.stop("immediate");
    try {
      const started = Date.now();
      await expect(
        retry(() => a.heartbeat(), { baseDelayMs: 50, deadlineMs: 800 }),
      ).rejects.toBeInstanceOf(SwarmUnreachableError);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      swarm.cluster.start();
    }
    let calls = 0;
    await expect(
      retry(async () => {
        calls++;
        return a.cas("cpu", 0, -1).then(() => a.claim({}, 60));
      }),
    ).rejects.toThrow(/a claim needs a diff hash or a parameter key/);
    expect(calls).toBe(1);
  });

  it("ends a transaction the server cut off between two statements with SwarmUnreachableError, not the process", async () => {
    const db = new SwarmConnection(swarm.ownerUrl);
    const admin = new SwarmConnection(swarm.ownerUrl);
    try {
      // The server ends the connection while the transaction waits on this side: the
      // driver reports that as an event, which would end the process with no listener.
      const cut = db.transaction("a cut transaction", async (tx) => {
        const [row] = await tx.query<{ pid: number }>("pid", "SELECT pg_backend_pid() AS pid");
        await admin.query("terminate", "SELECT pg_terminate_backend($1)", [row!.pid]);
        await new Promise((r) => setTimeout(r, 500));
        return tx.query("after", "SELECT 1");
      });
      await expect(cut).rejects.toBeInstanceOf(SwarmUnreachableError);
      // The pool connects anew for the next caller.
      expect(await db.query<{ one: number }>("again", "SELECT 1 AS one")).toEqual([{ one: 1 }]);
    } finally {
      await db.close();
      await admin.close();
    }
  });

  it("takes a statement an administrator or a timeout cancelled as worth retrying, not as a refusal", async () => {
    const db = new SwarmConnection(swarm.ownerUrl);
    const admin = new SwarmConnection(swarm.ownerUrl);
    try {
      const slow = db.query("a slow read", "SELECT pg_sleep(30)").catch((e: unknown) => e);
      let cancelled = false;
      while (!cancelled) {
        await new Promise((r) => setTimeout(r, 100));
        const rows = await admin.query<{ c: boolean }>(
          "cancel",
          "SELECT pg_cancel_backend(pid) AS c FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'",
        );
        cancelled = rows.some((r) => r.c);
      }
      const error = await slow;
      expect(error).toBeInstanceOf(SwarmUnreachableError);
      expect((error as SwarmUnreachableError).code).toBe("57014");
    } finally {
      await db.close();
      await admin.close();
    }
  });

  it("gives a connection the server ends as it changes hands no chance to end the process", async () => {
    // A real server cannot be made to send these in one read: a query's answer and, in the
    // same write, the server's goodbye. The pool hands the connection to the waiting
    // transaction between the two.
    const wire = await wireServer((socket) =>
      socket.end(
        Buffer.concat([
          message("C", text("SELECT 1")),
          READY,
          message("E", Buffer.concat([text("SFATAL", "C57P01", "Mterminating"), Buffer.from([0])])),
        ]),
      ),
    );
    const db = new SwarmConnection(wire.url, { poolSize: 1 });
    try {
      const first = db.query("first", "SELECT 1");
      const second = db.transaction("second", (tx) => tx.query("inside", "SELECT 1"));
      expect(await first).toEqual([]);
      await expect(second).rejects.toBeInstanceOf(SwarmUnreachableError);
    } finally {
      await db.close();
      wire.close();
    }
  });

  it("refuses init again when the database stops answering after the connect, pushing nothing", async () => {
    // The connect's SELECT 1 is answered; the next statement finds the server gone.
    let statements = 0;
    const wire = await wireServer((socket, data) => {
      if (data[0] !== "Q".charCodeAt(0)) return;
      if (++statements === 1) socket.write(Buffer.concat([message("C", text("SELECT 1")), READY]));
      else socket.destroy();
    });
    const root = makeRepo({ "autoresearch.yaml": "name: t\n" });
    const bare = tempDir("ar-bare-");
    sh(bare, "git init -q --bare");
    try {
      const init = initSwarm({
        root,
        url: wire.url,
        remote: bare,
        taskFile: "name: t\n",
        metric: "score",
        goal: "minimize",
      });
      await expect(init).rejects.toBeInstanceOf(SwarmUnreachableError);
      expect(sh(bare, "git for-each-ref")).toBe("");
    } finally {
      wire.close();
    }
  });

  it("holds no stop on a server that stopped answering: a call is let go, the connections cut, a rollback not waited for", async () => {
    // Logged in, then silent: a server whose processes were stopped.
    const wire = await wireServer(() => undefined);
    const db = new SwarmConnection(wire.url, { queryTimeoutMs: 1_000 });
    try {
      // A transaction whose statement gets no answer fails at the query timeout, not
      // at twice that: no rollback is sent down a connection that does not answer.
      const begun = Date.now();
      await expect(
        db.transaction("a transaction", (tx) => tx.query("inside", "SELECT 1")),
      ).rejects.toBeInstanceOf(SwarmUnreachableError);
      expect(Date.now() - begun).toBeLessThan(1_800);

      const hanging = new SwarmConnection(wire.url, { queryTimeoutMs: 60_000 });
      const stop = new AbortController();
      const call = answeredBeforeStop(hanging.query("a read", "SELECT 1"), stop.signal, 500);
      const caught = call.catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 300));
      const stopped = Date.now();
      stop.abort();
      const error = await caught;
      expect(error).toBeInstanceOf(SwarmUnreachableError);
      expect((error as Error).message).toContain("did not answer within 0.5 s of the stop");
      await hanging.close();
      expect(Date.now() - stopped).toBeLessThan(3_000);
    } finally {
      await db.close();
      wire.close();
    }
  });

  it("closes a watch whose server stopped answering, without waiting for it", async () => {
    // Every statement is answered, with no rows, until the watch says goodbye: a frozen
    // server never closes the connection.
    const wire = await wireServer((socket, data) => {
      if (data[0] === "Q".charCodeAt(0))
        socket.write(Buffer.concat([message("C", text("OK")), READY]));
    });
    const db = new SwarmConnection(wire.url);
    try {
      const watch = await watchLine(db, () => undefined);
      expect(watch.listening).toBe(true);
      const started = Date.now();
      await watch.close();
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await db.close();
      wire.close();
    }
  });
});

/** A message of PostgreSQL's wire protocol: a type byte, a length, a body. */
function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
const text = (...parts: string[]) => Buffer.from(parts.map((p) => `${p}\0`).join(""));
const READY = message("Z", Buffer.from("I"));

/**
 * A server that speaks just enough of the wire protocol to log anyone in, and hands every
 * later message to `answer`: for timings a real server cannot be made to produce.
 */
async function wireServer(answer: (socket: Socket, data: Buffer) => void) {
  const sockets: Socket[] = [];
  // Half open: a goodbye from the client does not close the server's side (a frozen
  // server never does).
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    let startup = true;
    socket.on("data", (data) => {
      if (!startup) return answer(socket, data);
      startup = false;
      socket.write(Buffer.concat([message("R", Buffer.alloc(4)), READY]));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    url: `postgres://host_a:pw@127.0.0.1:${port}/swarm`,
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}
