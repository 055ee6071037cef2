import { afterEach, expect, it, vi } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { runSessions, timeWithin } from "../../src/ledger/sessions.js";
import { tempDir } from "../helpers.js";

afterEach(() => {
  vi.useRealTimers();
});

const T0 = Date.UTC(2025, 10, 27, 9);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

it("a session killed before it recorded its end ends at the last thing it recorded, not at the next one's start", () => {
  vi.useFakeTimers({ toFake: ["Date"] });
  const at = (ms: number) => vi.setSystemTime(T0 + ms);
  const ledger = Ledger.open(tempDir());
  try {
    at(0);
    const run = ledger.createRun({
      tag: "r",
      taskName: "t",
      taskJson: "{}",
      metric: "score",
      goal: "minimize",
      baseCommit: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
      branch: "autoresearch/r",
      researcher: "mutate",
      judge: "greedy",
      seed: 1,
      maxTrials: null,
    });
    // The first session takes the run, records for ten minutes, and is killed.
    at(1_000);
    ledger.setOwner(run.id, 101, "a");
    at(10 * MINUTE);
    ledger.event(run.id, null, "setup-end");
    // Resumed five hours later; this one ends cleanly after twenty minutes.
    at(5 * HOUR);
    ledger.setOwner(run.id, 102, "b");
    at(5 * HOUR + 20 * MINUTE);
    ledger.setOwner(run.id, null, null);

    const sessions = runSessions(ledger.db, run.id, T0 + 6 * HOUR);
    expect(sessions.map((s) => [s.start - T0, s.end - T0])).toEqual([
      [0, 0], // made, then taken by the same process a second on
      [1_000, 10 * MINUTE],
      [5 * HOUR, 5 * HOUR + 20 * MINUTE],
    ]);
    expect(timeWithin(sessions, T0, T0 + 6 * HOUR)).toBe(30 * MINUTE - 1_000);
  } finally {
    ledger.close();
  }
});

it("a run recorded before sessions were counts its whole span", () => {
  expect(timeWithin([], 1_000, 5_000)).toBe(4_000);
});
