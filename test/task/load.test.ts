import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TaskFileError } from "../../src/errors.js";
import { JUDGES } from "../../src/judge/index.js";
import { loadTask, parseTask } from "../../src/task/load.js";
import { formatSeconds, parseDuration, parseSize } from "../../src/util/units.js";
import { runCli, tempDir } from "../helpers.js";

const MINIMAL =
  "run: python train.py\neditable: [train.py]\nmetric: { name: val_bpb, goal: minimize }\n";

function error(source: string): string {
  try {
    parseTask(source, "/task");
  } catch (e) {
    expect(e).toBeInstanceOf(TaskFileError);
    return (e as Error).message;
  }
  throw new Error("expected the task file to be refused");
}

describe("the task file", () => {
  it("fills defaults for a minimal file", () => {
    const task = parseTask(MINIMAL, "/work/nanogpt");
    expect(task).toMatchObject({
      name: "nanogpt",
      program: "program.md",
      editable: ["train.py"],
      protected: [],
      setup: null,
      budget: 300,
      timeout: 660,
      killGrace: 10,
      logLimit: 10_000_000,
      seed: 42,
      metric: { name: "val_bpb", goal: "minimize", parser: "summary", pattern: null },
      resources: { gpus: 0, cpus: null },
      judge: { policy: "greedy", minEffect: 0 },
    });
  });

  it("gives a section written as {} the same values as one left out", () => {
    const empty = "researcher: {}\njudge: {}\nslurm: {}\nresources: {}\n";
    expect(parseTask(`${MINIMAL}${empty}`, "/t")).toEqual(parseTask(MINIMAL, "/t"));
    expect(parseTask(MINIMAL, "/t").researcher).toMatchObject({
      kind: null,
      model: null,
      maxTurns: 40,
      historyTokens: 24_000,
      args: [],
    });
    expect(parseTask(`${MINIMAL}judge: { policy: confirm }\n`, "/t").judge.seeds).toBe(3);
  });

  it("keeps each branch's own message for fields that take a text or a mapping", () => {
    expect(error(`${MINIMAL}verify: ''\n`)).toContain(
      "verify: must not be empty: the held-out check's shell command",
    );
    expect(error(`${MINIMAL}verify: { run: '' }\n`)).toMatch(
      /:4:\d+: verify.run: must not be empty/,
    );
    expect(error(`${MINIMAL}secondary: ['']\n`)).toContain(
      "secondary[0]: must not be empty: a metric name",
    );
    expect(error(`${MINIMAL}stages: [{ name: a, budget: 10s, timeout: 5s }]\n`)).toContain(
      'stages: "a": timeout must be longer than its budget (10s), got 5s',
    );
  });

  it("keeps every path of the task file inside the task", () => {
    expect(error(MINIMAL.replace("[train.py]", "[/etc/passwd]"))).toContain(
      'editable[0]: must stay inside the task: a relative path without `..`, got "/etc/passwd"',
    );
    expect(error(MINIMAL.replace("[train.py]", '[train.py, "../../**"]'))).toContain(
      'editable[1]: must stay inside the task: a relative path without `..`, got "../../**"',
    );
    expect(error(`${MINIMAL}program: ../outside.txt\n`)).toContain(
      'program: must stay inside the task: a relative path without `..`, got "../outside.txt"',
    );
    expect(error(`${MINIMAL}outputs: ["out/../../x"]\n`)).toContain("outputs[0]: must stay inside");
    expect(parseTask(`${MINIMAL}outputs: ["out/**", "ckpt/*.pt"]\n`, "/t").outputs).toHaveLength(2);
  });

  it("reads every field of the design's example", () => {
    const task = parseTask(
      [
        "name: nanogpt",
        "program: program.md",
        "editable: [train.py]",
        "protected: [prepare.py]",
        "setup: python prepare.py",
        "run: python train.py",
        "budget: 300s",
        "timeout: 10m",
        "metric: { name: val_bpb, goal: minimize }",
        "secondary: [peak_vram_mb, { name: mfu, pattern: 'mfu (\\d+)' }]",
        'constraints: ["peak_vram_mb < 80000"]',
        "resources: { gpus: 1 }",
        "judge: { policy: greedy, min_effect: 0.0005 }",
        "env: { DEPTH: 8, FAST: true }",
        "log_limit: 2MiB",
      ].join("\n"),
      "/t",
    );
    expect(task.timeout).toBe(600);
    expect(task.secondary).toEqual([
      { name: "peak_vram_mb", pattern: null },
      { name: "mfu", pattern: "mfu (\\d+)" },
    ]);
    expect(task.constraints).toEqual([
      { text: "peak_vram_mb < 80000", metric: "peak_vram_mb", op: "<", value: 80000 },
    ]);
    expect(task.env).toEqual({ DEPTH: "8", FAST: "true" });
    expect(task.logLimit).toBe(2 * 1024 * 1024);
    expect(task.judge.minEffect).toBe(0.0005);
  });

  it("names the field, its position, the bad value and what is allowed", () => {
    expect(error(MINIMAL.replace("minimize", "minimise"))).toBe(
      'autoresearch.yaml:3:32: metric.goal: must be one of minimize, maximize, got "minimise"',
    );
    expect(error(`${MINIMAL}budget: 5 minutes\n`)).toContain(
      'autoresearch.yaml:4:9: budget: must be a positive duration such as "300s", "5m", "1h" or a number of seconds (exported as AR_TIME_BUDGET), got "5 minutes"',
    );
    expect(error(`${MINIMAL}bogus: 1\n`)).toMatch(
      /autoresearch.yaml:4:1: bogus: unknown field; allowed fields: name, program, editable/,
    );
  });

  it("reads the sandbox as a mode or a section, and refuses binds that are not absolute or not there", () => {
    expect(parseTask(MINIMAL, "/task").sandbox).toEqual({
      mode: "auto",
      network: false,
      binds: [],
      maxProcesses: 8192,
      maxFileSize: 16 * 1024 ** 3,
    });
    expect(parseTask(`${MINIMAL}sandbox: none\n`, "/task").sandbox.mode).toBe("none");
    const dir = tempDir();
    expect(
      parseTask(
        `${MINIMAL}sandbox: { binds: ["${dir}", { path: "${dir}", writable: true }] }\n`,
        "/task",
      ).sandbox.binds,
    ).toEqual([
      { path: dir, writable: false },
      { path: dir, writable: true },
    ]);
    expect(error(`${MINIMAL}sandbox: { binds: [/does/not/exist] }\n`)).toBe(
      'autoresearch.yaml:4:20: sandbox.binds[0]: does not exist; create it or remove it, got "/does/not/exist"',
    );
    expect(error(`${MINIMAL}sandbox: { binds: [data/shards] }\n`)).toContain(
      "sandbox.binds[0]: must be an absolute path (or one under ~/, quoted), or { path, writable }",
    );
    expect(error(`${MINIMAL}sandbox: { network: yes }\n`)).toContain(
      "sandbox.network: must be true or false",
    );
  });

  it("refuses each kind of bad input with its own message", () => {
    const cases: [string, RegExp][] = [
      ["editable: [a]\nmetric: {name: m, goal: minimize}\n", /run: is required: the shell command/],
      ["run: x\nmetric: {name: m, goal: minimize}\n", /editable: is required/],
      [
        "run: x\neditable: []\nmetric: {name: m, goal: minimize}\n",
        /editable: must list at least one glob, got \[\]/,
      ],
      [
        "run: x\neditable: train.py\nmetric: {name: m, goal: minimize}\n",
        /editable: must be a list of globs .*got "train.py"/,
      ],
      ["run: x\neditable: [a]\n", /metric: is required/],
      ["run: x\neditable: [a]\nmetric: {goal: minimize}\n", /metric.name: is required/],
      [`${MINIMAL}timeout: 0s\n`, /timeout: must be a positive duration/],
      [
        `${MINIMAL}researcher: { params: [] }\n`,
        /researcher.params: name at least one parameter, or leave params out to search them all, got \[\]/,
      ],
      [
        `${MINIMAL}budget: 10s\ntimeout: 5s\n`,
        /timeout: must be longer than budget \(10s\), got 5s/,
      ],
      [`${MINIMAL}log_limit: lots\n`, /log_limit: must be a size of at least 1KiB .*got "lots"/],
      [`${MINIMAL}log_limit: 8GB\n`, /log_limit: must be at most 1GiB/],
      [`${MINIMAL}seed: 1.5\n`, /seed: must be an integer, got 1.5/],
      [
        `${MINIMAL}constraints: ["vram is small"]\n`,
        /constraints\[0\]: must have the form "metric op number".*got "vram is small"/,
      ],
      [`${MINIMAL}resources: { gpus: -1 }\n`, /resources.gpus: must be 0 or more, got -1/],
      [
        `${MINIMAL}resources: { tpus: 1 }\n`,
        /resources.tpus: unknown field; allowed fields: gpus, cpus/,
      ],
      [
        `${MINIMAL}judge: { policy: bayes }\n`,
        new RegExp(
          `judge.policy: must be one of ${JUDGES.map((j) => j.name).join(", ")}, got "bayes"`,
        ),
      ],
      [`${MINIMAL}judge: { min_effect: -1 }\n`, /judge.min_effect: must be ≥ 0, got -1/],
      [`${MINIMAL}env: { AR_SEED: 1 }\n`, /env.AR_SEED: AR_ variables are set by the harness/],
      [`${MINIMAL}env: { "1BAD": x }\n`, /env.1BAD: is not a valid environment variable name/],
      [
        `${MINIMAL}secondary: [{ name: b }]\n`,
        /secondary\[0\]: must be a metric name or \{ name, pattern \}/,
      ],
      [
        "run: x\neditable: [a]\nmetric: {name: m, goal: minimize, parser: regex}\n",
        /metric.pattern: is required when parser is regex/,
      ],
      [
        "run: x\neditable: [a]\nmetric: {name: m, goal: minimize, parser: regex, pattern: 'a(b'}\n",
        /metric.pattern: is not a valid regular expression/,
      ],
      [
        "run: x\neditable: [a]\nmetric: {name: m, goal: minimize, pattern: 'a(b)'}\n",
        /metric.pattern: is only used when parser is regex/,
      ],
      [
        "run: x\neditable: [a]\nmetric: {name: m, goal: minimize, parser: xml}\n",
        /metric.parser: must be one of summary/,
      ],
      ["run: [\n", /autoresearch.yaml:2:1: not valid YAML/],
      ["- just\n- a list\n", /must be a mapping of fields/],
    ];
    for (const [source, expected] of cases) expect(error(source)).toMatch(expected);
  });

  it("reads the judge, held-out check, outputs and the scale ladder", () => {
    const task = parseTask(
      [
        MINIMAL,
        "budget: 60s",
        "judge: { policy: confirm, min_effect: 0.001 }",
        "verify: python heldout.py",
        "outputs: [checkpoints/**]",
        "stages:",
        "  - { name: d8 }",
        "  - { name: d12, env: { DEPTH: 12 }, budget: 120s, seeds: 5 }",
        "promote_every: 5",
      ].join("\n"),
      "/t",
    );
    expect(task.judge).toEqual({ policy: "confirm", minEffect: 0.001, seeds: 3, confidence: 0.95 });
    expect(task.verify).toEqual({ run: "python heldout.py", metric: "val_bpb" });
    expect(task.outputs).toEqual(["checkpoints/**"]);
    expect(task.stages).toEqual([
      { name: "d8", env: {}, budget: 60, timeout: 180, seeds: 3 },
      { name: "d12", env: { DEPTH: "12" }, budget: 120, timeout: 300, seeds: 5 },
    ]);
    expect(task.promoteEvery).toBe(5);
    // Without stages, the search runs on one implicit stage with the task's own settings.
    expect(parseTask(MINIMAL, "/t").stages).toEqual([
      { name: "default", env: {}, budget: 300, timeout: 660, seeds: 1 },
    ]);
    expect(error(`${MINIMAL}stages: [{ name: a }, { name: a }]\n`)).toMatch(
      /stages: names the stage "a" twice/,
    );
    expect(error(`${MINIMAL}judge: { confidence: 1.5 }\n`)).toMatch(
      /judge.confidence: must be below 1/,
    );
    expect(error(`${MINIMAL}verify: { metric: x }\n`)).toMatch(
      /verify: must be a shell command, or \{ run, metric \}/,
    );
  });

  it("lists every problem at once", () => {
    const message = error("editable: []\nmetric: {name: m, goal: up}\n");
    expect(message.split("\n")).toHaveLength(3);
  });

  it("names a mistyped field with the closest allowed one, beside every other problem", async () => {
    const allowed = "allowed fields: name, program, editable, protected, setup, run, budget";
    expect(
      error("{ run: x, editabel: [a], metric: {name: m, goal: minimize} }\n").split("\n"),
    ).toEqual([
      "autoresearch.yaml:1:1: editable: is required: a list of globs (the files a researcher may change)",
      expect.stringMatching(
        new RegExp(
          `^autoresearch.yaml:1:11: editabel: unknown field; ${allowed}.*; did you mean editable\\?$`,
        ),
      ),
    ]);
    // Several unknown fields of one mapping: one line each, in the order of the file.
    const several = error(
      "run: x\neditable: [a]\nbugdet: 5s\nmetric: {name: m, goal: minimise, parsr: json}\nresources: {gpu: 1}\nsecondary: [{name: a, patern: x}]\n",
    ).split("\n");
    expect(
      several.map((line) => /^autoresearch.yaml:(\d+:\d+): (\S+):/.exec(line)?.slice(1)),
    ).toEqual([
      ["3:1", "bugdet"],
      ["4:25", "metric.goal"],
      ["4:35", "metric.parsr"],
      ["5:13", "resources.gpu"],
      ["6:13", "secondary[0]"],
      ["6:23", "secondary[0].patern"],
    ]);
    expect(several[0]).toMatch(/; did you mean budget\?$/);
    expect(several[2]).toMatch(
      /allowed fields: name, goal, parser, pattern; did you mean parser\?$/,
    );
    expect(several[3]).toMatch(/allowed fields: gpus, cpus; did you mean gpus\?$/);
    expect(several[5]).toMatch(/allowed fields: name, pattern; did you mean pattern\?$/);
    // A name far from every allowed one gets no guess.
    expect(error(`${MINIMAL}bogus: 1\n`)).not.toContain("did you mean");

    // As the user sees it.
    const dir = tempDir();
    writeFileSync(
      join(dir, "autoresearch.yaml"),
      "run: x\neditabel: [a]\nmetric: {name: m, goal: minimize}\n",
    );
    const cli = await runCli(["run", "-C", dir]);
    expect(cli.code).toBe(3);
    expect(cli.stderr).toContain("autoresearch.yaml:1:1: editable: is required");
    expect(cli.stderr).toMatch(
      /autoresearch.yaml:2:1: editabel: unknown field; .*; did you mean editable\?\n/,
    );
  });

  it("says how to start when the file is missing", () => {
    const dir = tempDir();
    expect(() => loadTask(dir)).toThrow(/no autoresearch.yaml in .*autoresearch init/);
    expect(() => loadTask(join(dir, "typo"))).toThrow(
      /the folder .*typo does not exist: give -C the task's folder/,
    );
    writeFileSync(join(dir, "autoresearch.yaml"), MINIMAL);
    expect(loadTask(dir).root).toBe(dir);
  });
});

describe("units", () => {
  it("parses durations and sizes", () => {
    expect(parseDuration("300s")).toBe(300);
    expect(parseDuration("5m")).toBe(300);
    expect(parseDuration("1.5h")).toBe(5400);
    expect(parseDuration("250ms")).toBe(0.25);
    expect(parseDuration(42)).toBe(42);
    expect(parseDuration("five")).toBeNull();
    expect(parseSize("10MB")).toBe(10_000_000);
    expect(parseSize("1KiB")).toBe(1024);
    expect(parseSize("ten")).toBeNull();
  });

  it("says durations rounded to their last unit, never 60 of it", () => {
    expect(formatSeconds(42.46)).toBe("42.5s");
    expect(formatSeconds(59.97)).toBe("1m0s");
    expect(formatSeconds(119.6)).toBe("2m0s");
    expect(formatSeconds(200)).toBe("3m20s");
    expect(formatSeconds(3599.6)).toBe("1h0m");
    expect(formatSeconds(7199)).toBe("2h0m");
    expect(formatSeconds(5400)).toBe("1h30m");
  });
});
