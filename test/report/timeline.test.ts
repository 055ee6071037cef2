import { describe, expect, it } from "vitest";
import { loadReportData } from "../../src/report/data.js";
import { renderSvg } from "../../src/report/render.js";
import { timelineSpec } from "../../src/report/timeline.js";
import { tempDir } from "../helpers.js";
import { xTickLabels } from "./checks.js";
import { fixtureLedger, HISTORY } from "./fixture.js";

const MINUTE = 60_000;

describe("the slot timeline's time axis", () => {
  const { ledger, run } = fixtureLedger(tempDir(), HISTORY);
  const data = loadReportData(ledger, run);
  ledger.close();

  it.each([
    ["a trial's first second, still running", 800, /^\d\d:\d\d:\d\d$/],
    ["a few minutes", 3 * MINUTE, /^\d\d:\d\d:\d\d$/],
    ["a quarter of an hour", 15 * MINUTE, /^\d\d:\d\d$/],
    ["an afternoon", 5 * 60 * MINUTE, /^\d\d:\d\d$/],
    ["more than a day", 30 * 60 * MINUTE, /^[A-Z][a-z]{2} \d\d \d\d:\d\d$/],
    ["two weeks", 14 * 24 * 60 * MINUTE, /^[A-Z][a-z]{2} \d\d$/],
  ])("labels %s with distinct, readable UTC times", async (_, span, pattern) => {
    // Two slots, up to now; the last replicate is still running when the span is short.
    const START = Date.now() - span;
    const slots = [
      { slot: "gpu0", start: START, end: START + span / 2 },
      { slot: "gpu1", start: START + span / 2, end: span < MINUTE ? null : START + span },
    ].map((s, i) => ({
      slot: s.slot,
      n: i,
      idx: 0,
      startedAt: s.start,
      finishedAt: s.end,
      durationMs: null,
      outcome: null,
      verdict: s.end === null ? null : ("keep" as const),
    }));
    const svg = await renderSvg(timelineSpec({ ...data, slots })!);
    const ticks = xTickLabels(svg);
    expect(ticks.length).toBeGreaterThanOrEqual(3);
    expect(new Set(ticks).size).toBe(ticks.length);
    for (const tick of ticks) expect(tick).toMatch(pattern);
    expect(svg).toContain(">time (UTC)</text>");
  });
});
