import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { ResearcherError } from "../../src/errors.js";
import { Ledger } from "../../src/ledger/ledger.js";
import type { RunEvent } from "../../src/orchestrator/events.js";
import {
  resumeRun,
  type StartOptions,
  startRun,
  tryWorkingCopy,
} from "../../src/orchestrator/index.js";
import { makeRepo, PYTHON, tempDir } from "../helpers.js";

/**
 * A task whose score is a known function of four lowercase parameters; `explode = true`
 * crashes the replicate, so some of tune's random first samples fail.
 */
function task(yaml: string[] = []): string {
  return makeRepo({
    "autoresearch.yaml": [
      "name: landscape",
      "editable: [train.mjs]",
      "run: node train.mjs",
      "budget: 5s",
      "timeout: 20s",
      "metric: { name: score, goal: minimize }",
      ...yaml,
      "",
    ].join("\n"),
    "train.mjs": [
      "const x = 1.0;",
      "const depth = 4;",
      'const act = "relu"; // mutate: relu|gelu',
      "const explode = false;",
      'if (explode) { console.error("boom"); process.exit(1); }',
      'console.log("---");',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the fixture's own source
      'console.log(`score: ${(x - 3) ** 2 + Math.abs(depth - 6) + (act === "gelu" ? 0 : 0.5)}`);',
      "",
    ].join("\n"),
    "program.md": "Make score small.\n",
  });
}

function start(root: string, options: Partial<StartOptions> = {}) {
  const events: RunEvent[] = [];
  const promise = startRun({
    root,
    tag: "t1",
    researcher: "tune",
    maxTrials: 12,
    sandbox: "none",
    signal: new AbortController().signal,
    emit: (e) => events.push(e),
    ...options,
  });
  return { promise, events };
}

/** A new session of run t1, up to `maxTrials`; `stopAt` interrupts it when that trial is proposed. */
const resume = (root: string, maxTrials: number, stopAt?: number) => {
  const stop = new AbortController();
  return resumeRun({
    root,
    tag: "t1",
    maxTrials,
    sandbox: "none",
    signal: stop.signal,
    emit: (e) => {
      if (e.type === "proposal" && e.n === stopAt) stop.abort();
    },
  });
};

interface StudyTrial {
  number: number;
  state: string;
  value: number | null;
  trial: string | null;
  proposedFor: string | null;
  failed: string | null;
  abandoned: boolean;
}

/** The run's Optuna study as its own SQLite file holds it. */
function study(root: string, tag = "t1"): StudyTrial[] {
  const db = new Database(join(root, ".autoresearch", "runs", tag, "tune.sqlite3"), {
    readonly: true,
  });
  try {
    return db
      .prepare(
        `SELECT t.number, t.state,
           (SELECT value FROM trial_values v WHERE v.trial_id = t.trial_id) AS value,
           (SELECT value_json FROM trial_user_attributes a WHERE a.trial_id = t.trial_id AND a.key = 'trial') AS trial,
           (SELECT value_json FROM trial_user_attributes a WHERE a.trial_id = t.trial_id AND a.key = 'proposed_for') AS proposedFor,
           (SELECT value_json FROM trial_user_attributes a WHERE a.trial_id = t.trial_id AND a.key = 'failed') AS failed,
           EXISTS (SELECT 1 FROM trial_user_attributes a WHERE a.trial_id = t.trial_id AND a.key = 'abandoned') AS abandoned
         FROM trials t ORDER BY t.number`,
      )
      .all()
      .map((r) => {
        const row = r as Omit<StudyTrial, "abandoned"> & { abandoned: number };
        return {
          ...row,
          trial: row.trial === null ? null : String(JSON.parse(row.trial)),
          proposedFor: row.proposedFor === null ? null : String(JSON.parse(row.proposedFor)),
          failed: row.failed === null ? null : String(JSON.parse(row.failed)),
          abandoned: !!row.abandoned,
        };
      });
  } finally {
    db.close();
  }
}

function trials(root: string, tag = "t1") {
  const ledger = Ledger.open(root);
  try {
    return ledger.trials(ledger.run(tag)!.id);
  } finally {
    ledger.close();
  }
}

describe("the tune researcher, with the real Optuna helper", () => {
  it("names its parameters in the header, tells the study every result (failures as failures, ranked below every result), and starts warm on resume", async () => {
    const root = task();
    const first = start(root);
    const end = await first.promise;
    expect(end.status).toBe("finished");
    const notices = first.events.flatMap((e) => (e.type === "notice" ? [e.text] : []));
    expect(notices).toContainEqual(
      expect.stringMatching(
        /^tune \(GP\): 4 parameter\(s\) in train\.mjs: x 1\.0 \[0\.1, 10\] log \(inferred\) · depth 4 \[1, 16\] log \(inferred\) · act relu \{relu, gelu\} · explode false \{false, true\}$/,
      ),
    );

    const ledger1 = trials(root);
    expect(ledger1).toHaveLength(12);
    const crashed = ledger1.filter((t) => t.verdict === "crash").map((t) => String(t.n));
    // Early samples explore: some set `explode`, which must be told as a failure.
    expect(crashed.length).toBeGreaterThan(0);
    for (const t of ledger1.filter((t) => !t.baseline && t.verdict === "crash"))
      expect(t.title).toMatch(/explode false → true/);

    // Every trial was told exactly once, the last ones when the session ended.
    const told1 = study(root).filter((s) => s.trial !== null);
    for (const t of ledger1) {
      const held = told1.filter((s) => s.trial === String(t.n));
      expect(held, `trial ${t.n}`).toHaveLength(1);
      if (t.verdict === "crash")
        expect([held[0]!.state, held[0]!.failed]).toEqual(["PRUNED", "crash"]);
      else {
        expect(held[0]!.state).toBe("COMPLETE");
        expect(held[0]!.value).toBeCloseTo(t.metric!, 9);
      }
    }
    expect(study(root).filter((s) => s.state === "RUNNING")).toEqual([]);

    // A session interrupted while trial 13 runs leaves its proposal open; the next session
    // closes it and marks it, then adds its result when the trial has run again.
    expect((await resume(root, 16, 13)).status).toBe("stopped");
    expect(
      study(root)
        .filter((s) => s.state === "RUNNING")
        .map((s) => [s.proposedFor, s.trial]),
    ).toEqual([["13", null]]);
    const resumed = await resume(root, 16);
    expect(resumed.status).toBe("finished");
    const all = trials(root);
    expect(all).toHaveLength(16);
    const held = study(root);
    expect(held.filter((s) => s.abandoned).map((s) => [s.proposedFor, s.trial, s.state])).toEqual([
      ["13", null, "FAIL"],
    ]);
    for (const t of all) {
      const told = held.filter((s) => s.trial === String(t.n) && !s.abandoned);
      expect(told, `trial ${t.n}`).toHaveLength(1);
      expect(told[0]!.state).toBe(t.verdict === "crash" ? "PRUNED" : "COMPLETE");
    }
    // The study learns: its later samples are no worse than its random first ones.
    const best = (list: typeof all) => Math.min(...list.map((t) => t.metric ?? Infinity));
    expect(best(all)).toBeLessThan(all.find((t) => t.baseline)!.metric!);
  }, 180_000);

  it("starts warm from another run of the task, and refuses one that is not there", async () => {
    const root = task();
    await start(root, { researcher: "mutate", maxTrials: 5 }).promise;
    const earlier = trials(root).filter((t) => t.state === "done");
    const { promise, events } = start(root, {
      tag: "t2",
      maxTrials: 3,
      researcherFlags: { warmStart: "t1" },
    });
    await promise;
    expect(events).toContainEqual({ type: "notice", text: "tune: warm start from t1 (5 trials)" });
    const held = study(root, "t2");
    for (const t of earlier)
      if (t.verdict === "keep" || t.verdict === "discard")
        expect(held.filter((s) => s.trial === `t1#${t.n}`).map((s) => s.value)).toEqual([t.metric]);

    await expect(
      start(root, { tag: "t3", researcherFlags: { warmStart: "nope" } }).promise,
    ).rejects.toThrow(/--warm-start: no run "nope" in this task's ledger; runs: t1, t2/);
  }, 120_000);

  it("alternates with a model or agent researcher: one changes the code, tune its parameters", async () => {
    const agent = [
      'n=$(node -e \'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).trial))\')',
      'echo "// structure $n" >> train.mjs',
      'echo "{\\"title\\": \\"structure $n\\", \\"hypothesis\\": \\"a comment helps\\"}"',
    ].join("; ");
    const root = task([`researcher: { command: ${JSON.stringify(agent)} }`]);
    const end = await start(root, { researcher: "command,tune", maxTrials: 7, lookahead: 0 })
      .promise;
    expect(end.status).toBe("finished");
    const made = trials(root).filter((t) => !t.baseline);
    expect(made.map((t) => t.researcher)).toEqual([
      "command",
      "tune",
      "command",
      "tune",
      "command",
      "tune",
    ]);
    for (const t of made)
      if (t.researcher === "command") expect(t.title).toBe(`structure ${t.n}`);
      else
        expect(t.title).toMatch(
          /^(x|depth|act|explode) \S+ → \S+(; (x|depth|act|explode) \S+ → \S+)*$/,
        );
  }, 120_000);

  it("goes on when the other researcher removes a named parameter; a misspelled name stops the run before it starts", async () => {
    const agent = [
      "sed -i '/^const depth/d; s/Math.abs(depth - 6)/0/' train.mjs",
      'echo \'{"title": "drop depth", "hypothesis": "depth does not matter"}\'',
    ].join("; ");
    const root = task([`researcher: { command: ${JSON.stringify(agent)}, params: [x, depth] }`]);
    const end = await start(root, { researcher: "command,tune", maxTrials: 6, lookahead: 0 })
      .promise;
    expect(end.status).toBe("finished");
    const made = trials(root).filter((t) => !t.baseline);
    expect(made.filter((t) => t.researcher === "tune").every((t) => t.verdict !== "invalid")).toBe(
      true,
    );
    // After the agent's keep, tune changes x alone: depth is gone from the incumbent.
    const drop = made.find((t) => t.title === "drop depth" && t.verdict === "keep")!;
    expect(drop).toBeDefined();
    expect(made.some((t) => t.researcher === "tune" && t.n > drop.n)).toBe(true);
    for (const t of made.filter((t) => t.researcher === "tune" && t.n > drop.n))
      expect(t.title).toMatch(/^x \S+ → \S+$/);

    const typo = task(["researcher: { params: [learning_rat, dpeth] }"]);
    await expect(start(typo).promise).rejects.toThrow(
      /^researcher.params: "learning_rat", "dpeth" match no parameter of the editable files \(did you mean "depth"\?\); found: x, depth, act, explode$/,
    );
  }, 120_000);

  it("says how to install Optuna when the Python has none, before anything is recorded", async () => {
    const venv = join(tempDir(), "venv");
    execFileSync(PYTHON, ["-m", "venv", "--without-pip", venv]);
    const root = task([`researcher: { python: ${join(venv, "bin", "python")} }`]);
    const error = await start(root).promise.catch((e) => e);
    expect(error).toBeInstanceOf(ResearcherError);
    expect(error.message).toMatch(
      /^tune needs Python 3 with Optuna; install it with `apt install python3-optuna` \(Debian, Ubuntu\) or `pip install optuna`, or set researcher.python to a Python that has it\. Tried .*venv\/bin\/python: ModuleNotFoundError: No module named 'optuna'$/,
    );
    expect(existsSync(join(root, ".autoresearch", "runs", "t1"))).toBe(false);
    const ledger = Ledger.open(root);
    expect(ledger.runs()).toEqual([]);
    ledger.close();
  }, 60_000);

  it.each([
    ["tpe", "TPE"],
    ["cmaes", "CMA-ES"],
  ])(
    "runs the %s sampler when asked, and improves on the baseline",
    async (sampler, label) => {
      const root = task();
      const { promise, events } = start(root, { maxTrials: 12, researcherFlags: { sampler } });
      expect((await promise).status).toBe("finished");
      expect(events).toContainEqual(
        expect.objectContaining({
          type: "notice",
          text: expect.stringMatching(new RegExp(`^tune \\(${label}\\): `)),
        }),
      );
      const all = trials(root);
      const made = all.filter((t) => !t.baseline);
      expect(made.every((t) => t.hypothesis?.startsWith(`${label} suggests `))).toBe(true);
      const best = Math.min(...made.map((t) => t.metric ?? Infinity));
      expect(best).toBeLessThan(all.find((t) => t.baseline)!.metric!);
    },
    90_000,
  );

  it("sets the study aside when a kept change gives a parameter new choices, and goes on in the new space", async () => {
    const root = task();
    await start(root, { maxTrials: 4 }).promise;
    // A person (or another researcher) keeps a change that also adds a choice.
    const git = (...args: string[]) => execFileSync("git", args, { cwd: root, encoding: "utf8" });
    git("checkout", "-q", "autoresearch/t1");
    const file = join(root, "train.mjs");
    writeFileSync(
      file,
      readFileSync(file, "utf8")
        .replace(/const x = [^;]+;/, "const x = 3.0;")
        .replace(/const depth = [^;]+;/, "const depth = 6;")
        .replace(
          /const act = "[a-z]+"; \/\/ mutate: relu\|gelu/,
          'const act = "gelu"; // mutate: relu|gelu|silu',
        ),
    );
    const tried = await tryWorkingCopy({
      root,
      title: "the optimum, silu allowed",
      hypothesis: "x = 3, depth = 6 and gelu score 0",
      newTag: "t1",
      sandbox: "none",
      signal: new AbortController().signal,
      emit: () => undefined,
    });
    expect(tried.trial?.verdict).toBe("keep");
    git("checkout", "-q", "main");

    expect((await resume(root, 9)).status).toBe("finished");
    const after = trials(root).filter((t) => t.n > tried.trial!.n);
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((t) => t.verdict === "invalid").map((t) => t.reason)).toEqual([]);
    expect(
      readdirSync(join(root, ".autoresearch", "runs", "t1")).some((f) =>
        f.startsWith("tune.sqlite3.unusable-"),
      ),
    ).toBe(true);
  }, 120_000);

  it("refuses --sampler on a run without tune rather than ignore it", async () => {
    const root = task();
    await expect(
      start(root, { researcher: "mutate", researcherFlags: { sampler: "tpe" } }).promise,
    ).rejects.toThrow(
      /--sampler is a setting of the tune researcher, which this run does not use \(mutate\); add --researcher tune/,
    );
    expect(existsSync(join(root, ".autoresearch", "runs", "t1"))).toBe(false);
  });

  it("sets an unusable study file aside and rebuilds the study from the ledger", async () => {
    const root = task();
    await start(root, { maxTrials: 4 }).promise;
    const file = join(root, ".autoresearch", "runs", "t1", "tune.sqlite3");
    writeFileSync(file, "this is not a database, it is text written over it\n");
    const resumed = await resume(root, 7);
    expect(resumed.status).toBe("finished");
    const all = trials(root);
    expect(all.filter((t) => t.verdict === "invalid")).toEqual([]);
    expect(
      readdirSync(join(root, ".autoresearch", "runs", "t1")).some((f) =>
        f.startsWith("tune.sqlite3.unusable-"),
      ),
    ).toBe(true);
    const held = study(root);
    for (const t of all.slice(0, -1))
      expect(
        held.filter((s) => s.trial === String(t.n)),
        `trial ${t.n}`,
      ).toHaveLength(1);
  }, 90_000);
});
