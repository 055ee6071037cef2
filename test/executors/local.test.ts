import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ReplicateSpec } from "../../src/executors/executor.js";
import { createLocalExecutor, localSlots } from "../../src/executors/local.js";
import type { ProcessResult } from "../../src/executors/process.js";
import { classify } from "../../src/metrics/outcome.js";
import { FIXTURES, tempDir } from "../helpers.js";

const GATED = `${process.execPath} ${join(FIXTURES, "gated.mjs")}`;

/** Replicates of the gated fixture on one executor, noting their moments in one file. */
function harness(slots = 1) {
  const dir = tempDir();
  const events = join(dir, "events");
  const executor = createLocalExecutor(localSlots({ count: slots }));
  const spec = (
    name: string,
    o: {
      ready?: number;
      work?: number;
      gated?: boolean;
      timeoutMs?: number;
      signal?: AbortSignal;
    } = {},
  ): ReplicateSpec => ({
    name,
    command: GATED,
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      EVENTS: events,
      NAME: name,
      READY_MS: String(o.ready ?? 0),
      WORK_MS: String(o.work ?? 0),
    },
    logPath: join(dir, `${name}.log`),
    logLimit: 1_000_000,
    timeoutMs: o.timeoutMs ?? 20_000,
    killGraceMs: 1000,
    gpus: 0,
    cpus: null,
    signal: o.signal ?? new AbortController().signal,
    onStart: () => undefined,
    sandbox: null,
    maxFileSize: 2 ** 30,
    gated: o.gated ?? true,
  });
  /** When each replicate reached each moment (epoch ms). */
  const at = () => {
    const moments: Record<string, Record<string, number>> = {};
    for (const line of readFileSync(events, "utf8").trim().split("\n")) {
      const [name, what, ms] = line.split(" ");
      moments[name!] ??= {};
      moments[name!]![what!] = Number(ms);
    }
    return moments;
  };
  return { executor, spec, at };
}

/** How the harness classifies a process that printed `score: 1`. */
const judged = (process: ProcessResult) =>
  classify(process, "---\nscore: 1\n", {
    metric: { name: "score", goal: "minimize", parser: "summary", pattern: null },
    secondary: [],
    constraints: [],
  });

describe("overlap: a gated replicate prepares on a busy slot", () => {
  it("starts while the slot's replicate works, and works only after it ends", async () => {
    const { executor, spec, at } = harness();
    const a = executor.run(spec("a", { work: 1500 }));
    const b = executor.run(spec("b", { ready: 200, work: 300 }));
    const [ra, rb] = await Promise.all([a, b]);
    const t = at();
    expect(t.b!.start).toBeLessThan(t.a!.end!);
    expect(t.b!.pass).toBeGreaterThanOrEqual(t.a!.end!);
    // Told whether its turn had come when it started: a's had, b's had not.
    expect(t.a!.open).toBeDefined();
    expect(t.b!.open).toBeUndefined();
    expect([ra.process.exitCode, rb.process.exitCode]).toEqual([0, 0]);
    // Its time is the slot's, from its turn: not the wait beside the other.
    expect(rb.process.durationMs).toBeLessThan(t.b!.end! - t.b!.start! - 500);
  });

  it("waits to start until the slot's replicate is in its timed work", async () => {
    const { executor, spec, at } = harness();
    const a = executor.run(spec("a", { ready: 800, work: 300 }));
    const b = executor.run(spec("b"));
    await Promise.all([a, b]);
    const t = at();
    expect(t.b!.start).toBeGreaterThanOrEqual(t.a!.pass!);
  });

  it("never starts beside a replicate that does not use the gate, nor two beside one", async () => {
    const { executor, spec, at } = harness();
    const a = executor.run(spec("a", { work: 600, gated: false }));
    const b = executor.run(spec("b", { work: 600 }));
    const c = executor.run(spec("c"));
    await Promise.all([a, b, c]);
    const t = at();
    expect(t.b!.start).toBeGreaterThanOrEqual(t.a!.end!);
    // b is in its timed work from its start, so c prepares beside it; never beside a.
    expect(t.c!.start).toBeGreaterThanOrEqual(t.b!.pass!);
    expect(t.c!.pass).toBeGreaterThanOrEqual(t.b!.end!);
  });

  it("keeps the order: one that cannot start early holds back those behind it", async () => {
    const { executor, spec, at } = harness();
    const a = executor.run(spec("a", { work: 600 }));
    const b = executor.run(spec("b", { work: 600 }));
    const c = executor.run(spec("c", { gated: false }));
    const d = executor.run(spec("d"));
    await Promise.all([a, b, c, d]);
    const t = at();
    expect(t.b!.start).toBeLessThan(t.a!.end!);
    expect(t.c!.start).toBeGreaterThanOrEqual(t.b!.end!);
    expect(t.d!.start).toBeGreaterThanOrEqual(t.c!.end!);
  });

  it("counts the timeout from its turn, not from its start", async () => {
    const { executor, spec } = harness();
    const a = executor.run(spec("a", { work: 1500 }));
    const b = executor.run(spec("b", { work: 200, timeoutMs: 1000 }));
    const [, rb] = await Promise.all([a, b]);
    expect(rb.process.timedOut).toBe(false);
    expect(rb.process.exitCode).toBe(0);
  });

  it("a stop while it waits ends it and leaves the working one alone", async () => {
    const { executor, spec, at } = harness();
    const stop = new AbortController();
    const a = executor.run(spec("a", { work: 1500 }));
    const b = executor.run(spec("b", { signal: stop.signal }));
    setTimeout(() => stop.abort(), 400);
    const [ra, rb] = await Promise.all([a, b]);
    expect(rb.process.aborted).toBe(true);
    expect(rb.process.durationMs).toBe(0);
    expect(ra.process.exitCode).toBe(0);
    // Under load the stop can come before b's process has noted even its start.
    expect(at().b?.pass).toBeUndefined();
  });

  it("one that finishes its work before its turn, never asking at the gate, is a crash that says why", async () => {
    const { executor, spec } = harness();
    const a = executor.run(spec("a", { work: 1200 }));
    const b = executor.run({ ...spec("b"), command: "sleep 0.3; echo ---; echo 'score: 1'" });
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra.process.beforeTurn).toBeUndefined();
    expect(rb.process).toMatchObject({ exitCode: 0, beforeTurn: true, durationMs: 0 });
    const outcome = judged(rb.process);
    expect(outcome.outcome).toBe("crash");
    expect(outcome.reason).toContain("ended before its turn on the slot");
  });

  it("one that waits at the gate without asking runs into its timeout, which says so", async () => {
    const { executor, spec } = harness();
    const read = `${process.execPath} -e "require('fs').readSync(3, Buffer.alloc(1))"`;
    const r = await executor.run({ ...spec("a", { timeoutMs: 1000 }), command: read });
    expect(r.process.timedOut).toBe(true);
    expect(readFileSync(spec("a").logPath, "utf8")).toContain("it never asked at its gate");
  });

  it("closes its side once it lets a program through: a socket left open keeps nothing alive", async () => {
    const { executor, spec } = harness();
    const open = `${process.execPath} -e "const s = new (require('net').Socket)({ fd: 3, readable: true, writable: true }); s.once('data', () => console.log('let through')); s.write('r')"`;
    const r = await executor.run({ ...spec("a", { timeoutMs: 5000 }), command: open });
    expect(r.process).toMatchObject({ exitCode: 0, timedOut: false });
    expect(readFileSync(spec("a").logPath, "utf8")).toContain("let through");
  });

  it("one that ends without ever asking at its gate is a crash that says why, even alone", async () => {
    const { executor, spec } = harness();
    const r = await executor.run({ ...spec("a"), command: "echo ---; echo 'score: 1'" });
    expect(r.process).toMatchObject({ exitCode: 0, neverAsked: true });
    const outcome = judged(r.process);
    expect(outcome.reason).toContain("it never asked at its gate");
  });

  it("crashes before a turn say nothing of the card: no GPU slot is set aside for them", async () => {
    const dir = tempDir();
    const executor = createLocalExecutor(localSlots({ gpus: ["0", "1"] }));
    const base = harness().spec;
    const spec = (name: string, o: { work?: number } = {}) => ({ ...base(name, o), cwd: dir });
    const a = executor.run(spec("a", { work: 2500 }));
    const b = executor.run(spec("b", { work: 2500 }));
    await new Promise((r) => setTimeout(r, 800));
    // Each placed beside a or b, each crashing at once, three in a row.
    for (const n of ["c", "d", "e"]) {
      const r = await executor.run({ ...spec(n), command: "exit 1" });
      expect(r.process.beforeTurn).toBe(true);
    }
    await Promise.all([a, b]);
    expect(executor.setAside()).toEqual([]);
  });

  it("one that ends before its turn frees its place for the next", async () => {
    const { executor, spec, at } = harness();
    const a = executor.run(spec("a", { work: 1500 }));
    const b = executor.run({ ...spec("b"), command: "exit 7" });
    const c = executor.run(spec("c", { work: 100 }));
    const [ra, rb, rc] = await Promise.all([a, b, c]);
    expect(rb.process.exitCode).toBe(7);
    const t = at();
    expect(t.c!.start).toBeLessThan(t.a!.end!);
    expect(t.c!.pass).toBeGreaterThanOrEqual(t.a!.end!);
    expect([ra.process.exitCode, rc.process.exitCode]).toEqual([0, 0]);
  });

  it("two slots: each holds one working and one preparing", async () => {
    const { executor, spec, at } = harness(2);
    const names = ["a", "b", "c", "d", "e"];
    const results = await Promise.all(names.map((n) => executor.run(spec(n, { work: 700 }))));
    const t = at();
    // On each slot, one works at a time: each passes only after the one before it ended.
    for (const slot of ["cpu0", "cpu1"]) {
      const on = names.filter((_, i) => results[i]!.slot.id === slot).map((n) => t[n]!);
      on.sort((x, y) => x.pass! - y.pass!);
      for (let i = 1; i < on.length; i++)
        expect(on[i]!.pass).toBeGreaterThanOrEqual(on[i - 1]!.end!);
    }
    // c and d prepared beside a and b; e could not start before one of those four ended.
    const firstEnd = Math.min(t.a!.end!, t.b!.end!);
    expect(Math.max(t.c!.start!, t.d!.start!)).toBeLessThan(firstEnd);
    expect(t.e!.start).toBeGreaterThanOrEqual(firstEnd);
  });
});
