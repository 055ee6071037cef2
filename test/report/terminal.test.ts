import { describe, expect, it } from "vitest";
import type { RunEvent } from "../../src/orchestrator/events.js";
import { createTerminalDisplay } from "../../src/report/terminal.js";

function capture() {
  let text = "";
  const stream = { columns: 80, write: (chunk: string) => (text += chunk) };
  return { stream, text: () => text };
}

const events: RunEvent[] = [
  {
    type: "run-start",
    tag: "t",
    task: "demo",
    metric: "val_loss",
    resumed: false,
    researcher: "mutate",
    sandbox: "sandbox: none (sandbox: none in the task file)",
  },
  { type: "trial-start", n: 0, baseline: true },
  {
    type: "replicate-start",
    n: 0,
    idx: 0,
    slot: "cpu0",
    title: "baseline",
    budget: 10,
    startedAt: Date.now() - 6000,
  },
  { type: "replicate-running", n: 0, idx: 0, at: Date.now() - 5000 },
];

describe("the terminal display", () => {
  it("shows a job waiting in a cluster's queue as queued", () => {
    const out = capture();
    const display = createTerminalDisplay(out.stream, true);
    display.emit(events[0]!);
    display.emit({
      type: "replicate-start",
      n: 4,
      idx: 0,
      slot: "job1",
      title: "LR up",
      budget: 300,
      startedAt: Date.now() - 2000,
    });
    expect(out.text()).toMatch(/job1 {3}#4 queued for 2s {2}LR up\n$/);
    display.close();
  });

  it("on a terminal, keeps a live line per busy slot with a progress bar, and verdicts above it", () => {
    const out = capture();
    const display = createTerminalDisplay(out.stream, true);
    for (const e of events) display.emit(e);
    expect(out.text()).toMatch(
      /best val_loss — · 0 trials · 0 kept\ncpu0 {3}#0 █{10}░{10} 5s\/10s {2}baseline\n$/,
    );
    display.emit({ type: "replicate-end", n: 0, idx: 0, slot: "cpu0", outcome: "ok", metric: 0.5 });
    display.emit({
      type: "trial-end",
      n: 0,
      baseline: true,
      title: "baseline",
      verdict: "keep",
      metric: 0.5,
      reason: "baseline",
      best: 0.5,
    });
    display.emit({
      type: "trial-end",
      n: 1,
      baseline: false,
      title: "LR 0.1 → 0.2",
      verdict: "keep",
      metric: 0.4,
      reason: "",
      best: 0.4,
    });
    // The live block is erased (cursor up, clear) before a verdict line is printed under the history.
    expect(out.text()).toContain("\x1b[2A\x1b[0J");
    expect(out.text()).toContain("\x1b[32mkeep       \x1b[0m val_loss 0.4");
    expect(out.text().trimEnd().split("\n").at(-1)).toBe("best val_loss 0.4 · 2 trials · 1 kept");
    display.close();
  });

  it("with overlap, shows the replicate that waits on a slot beside the one that runs", () => {
    const out = capture();
    const display = createTerminalDisplay(out.stream, true);
    display.emit(events[0]!);
    const start = { type: "replicate-start" as const, idx: 0, slot: "gpu0", budget: 60 };
    display.emit({ ...start, n: 1, title: "LR up", startedAt: Date.now() - 30_000 });
    display.emit({ type: "replicate-running", n: 1, idx: 0, at: Date.now() - 30_000 });
    display.emit({ ...start, n: 2, title: "LR down", startedAt: Date.now() - 5000 });
    const block = out.text().split("best ").at(-1)!;
    expect(block).toMatch(/gpu0 {3}#1 .* 30s\/1m0s {2}LR up\n/);
    expect(block).toMatch(/gpu0 {3}#2 queued for 5s {2}LR down\n$/);
    // The one that ran ends; the other, now running, stays.
    display.emit({ type: "replicate-end", n: 1, idx: 0, slot: "gpu0", outcome: "ok", metric: 1 });
    display.emit({ type: "replicate-running", n: 2, idx: 0, at: Date.now() });
    const after = out.text().split("best ").at(-1)!;
    expect(after).not.toContain("#1 ");
    expect(after).toMatch(/gpu0 {3}#2 .* 0s\/1m0s {2}LR down\n$/);
    display.close();
  });

  it("elsewhere, prints one plain line per event and no escape codes", () => {
    const out = capture();
    const display = createTerminalDisplay(out.stream, false);
    for (const e of events) display.emit(e);
    display.emit({
      type: "trial-end",
      n: 0,
      baseline: true,
      title: "baseline",
      verdict: "crash",
      metric: null,
      reason: "exit code 1: boom",
      best: null,
    });
    display.emit({ type: "run-end", status: "failed", reason: "the baseline failed" });
    display.close();
    expect(out.text()).toBe(
      [
        "starting run t of demo · researcher mutate",
        "sandbox: none (sandbox: none in the task file)",
        "#0 baseline",
        "#0 replicate 0 running on cpu0",
        "#0    crash       val_loss —          baseline  (exit code 1: boom)",
        "run failed: the baseline failed",
        "",
      ].join("\n"),
    );
    expect(out.text()).not.toContain("\x1b");
  });
});
