import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { applyEdits, edit, editableParams } from "../../src/researchers/params/files.js";
import { findParams, rewrite } from "../../src/researchers/params/find.js";
import { paramValue, writeValue } from "../../src/researchers/params/param.js";
import { anchored, type Dimension, dimensions } from "../../src/researchers/params/space.js";
import { readable } from "../../src/researchers/tune.js";
import { makeRepo, PYTHON, sh, tempDir } from "../helpers.js";

/** Every parameter changed, the file rewritten, and the new values as the format's own loader reads them. */
async function roundTrip(
  file: string,
  text: string,
  values: Record<string, number | boolean | string>,
) {
  const params = await findParams(file, text);
  const edits = params
    .filter((p) => p.name in values)
    .map((p) => ({ param: p, raw: writeValue(p, values[p.name]!) }));
  expect(edits.length).toBe(Object.keys(values).length);
  return rewrite(text, edits);
}

function python(code: string, stdin: string): unknown {
  return JSON.parse(execFileSync(PYTHON, ["-c", code], { input: stdin, encoding: "utf8" }));
}

describe("parameters in each kind of file", () => {
  it("Python: module-level assignments with their types, lowercase names, not in functions, not counters", async () => {
    const text = [
      "import os",
      "learning_rate = 1e-3  # mutate: 1e-5..1e-1",
      "warmup_iters: int = 100",
      "beta2 = 0.99",
      'activation = "gelu"  # mutate: relu|gelu',
      "compile = True",
      "BATCH = 2**19",
      "neg = -5",
      'path = f"{os.getcwd()}/x"',
      "pair = (1, 2)",
      "steps = 0",
      "def f():",
      "    inner = 3",
      "for _ in range(3):",
      "    steps += 1",
      "",
    ].join("\n");
    const found = await findParams("train.py", text);
    expect(found.map((p) => [p.name, p.kind, p.raw, p.line])).toEqual([
      ["learning_rate", "float", "1e-3", 2],
      ["warmup_iters", "int", "100", 3],
      ["beta2", "float", "0.99", 4],
      ["activation", "string", '"gelu"', 5],
      ["compile", "bool", "True", 6],
      ["BATCH", "pow2", "2**19", 7],
      ["neg", "int", "-5", 8],
    ]);
    expect(found[0]!.comment).toBe("mutate: 1e-5..1e-1");
    const out = await roundTrip("train.py", text, {
      learning_rate: 3.2e-4,
      warmup_iters: 250,
      beta2: 0.95,
      activation: "relu",
      compile: false,
      BATCH: 2 ** 18,
      neg: -7,
    });
    const read = python(
      "import json,sys; g={}; exec(sys.stdin.read().split('def f')[0], g); print(json.dumps({k: g[k] for k in ['learning_rate','warmup_iters','beta2','activation','compile','BATCH','neg']}))",
      out,
    );
    expect(read).toEqual({
      learning_rate: 3.2e-4,
      warmup_iters: 250,
      beta2: 0.95,
      activation: "relu",
      compile: false,
      BATCH: 2 ** 18,
      neg: -7,
    });
    expect(out).toContain("learning_rate = 3.2e-4  # mutate: 1e-5..1e-1");
  });

  it("JavaScript: top-level const/let/var, exported or not; the module still loads", async () => {
    const text =
      'export const lr = 0.01;\nconst depth = 4, act = "relu"; // mutate: relu|tanh\nvar USE = false;\nconst big = 2 ** 10;\nlet count = 0;\nfunction tick() { count++; }\nexport { depth, act, USE, big, tick };\n';
    const found = await findParams("model.mjs", text);
    expect(found.map((p) => [p.name, p.kind, p.raw])).toEqual([
      ["lr", "float", "0.01"],
      ["depth", "int", "4"],
      ["act", "string", '"relu"'],
      ["USE", "bool", "false"],
      ["big", "pow2", "2 ** 10"],
    ]);
    expect(found[2]!.comment).toBe("mutate: relu|tanh");
    const out = await roundTrip("model.mjs", text, {
      lr: 0.003,
      depth: 6,
      act: "tanh",
      USE: true,
      big: 2 ** 11,
    });
    const file = join(tempDir(), "model.mjs");
    writeFileSync(file, out);
    const loaded = await import(file);
    expect([loaded.lr, loaded.depth, loaded.act, loaded.USE, loaded.big]).toEqual([
      0.003,
      6,
      "tanh",
      true,
      2048,
    ]);
  });

  it("TypeScript: typed declarations", async () => {
    const text =
      "export const LR: number = 0.01;\nconst mode: 'a' | 'b' = 'a';\ninterface X { y: number }\n";
    const found = await findParams("cfg.ts", text);
    expect(found.map((p) => [p.name, p.kind, p.raw])).toEqual([
      ["LR", "float", "0.01"],
      ["mode", "string", "'a'"],
    ]);
    const out = await roundTrip("cfg.ts", text, { LR: 0.02, mode: "b" });
    expect(out).toBe(
      "export const LR: number = 0.02;\nconst mode: 'a' | 'b' = 'b';\ninterface X { y: number }\n",
    );
  });

  it("YAML: nested mappings as dotted names; floats a YAML 1.1 loader (PyYAML) still reads as floats", async () => {
    const text = [
      "model:",
      "  n_layer: 12",
      "  act: gelu  # mutate: gelu|relu",
      "optimizer:",
      "  lr: 6.0e-4",
      "  betas: [0.9, 0.95]",
      "  fused: true",
      "name: 'run'",
      "",
    ].join("\n");
    const found = await findParams("config.yaml", text);
    expect(found.map((p) => [p.name, p.kind, p.raw])).toEqual([
      ["model.n_layer", "int", "12"],
      ["model.act", "string", "gelu"],
      ["optimizer.lr", "float", "6.0e-4"],
      ["optimizer.fused", "bool", "true"],
      ["name", "string", "'run'"],
    ]);
    expect(found[1]!.comment).toBe("mutate: gelu|relu");
    const out = await roundTrip("config.yaml", text, {
      "model.n_layer": 8,
      "model.act": "relu",
      "optimizer.lr": 3e-5,
      "optimizer.fused": false,
      name: "other",
    });
    const read = python("import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin)))", out);
    expect(read).toEqual({
      model: { n_layer: 8, act: "relu" },
      optimizer: { lr: 3e-5, betas: [0.9, 0.95], fused: false },
      name: "other",
    });
  });

  it("JSON: members of nested objects", async () => {
    const text =
      '{\n  "train": { "lr": 0.001, "epochs": 10, "amp": false },\n  "arch": "resnet",\n  "sizes": [1, 2]\n}\n';
    const found = await findParams("cfg.json", text);
    expect(found.map((p) => [p.name, p.kind, p.raw])).toEqual([
      ["train.lr", "float", "0.001"],
      ["train.epochs", "int", "10"],
      ["train.amp", "bool", "false"],
      ["arch", "string", '"resnet"'],
    ]);
    const out = await roundTrip("cfg.json", text, {
      "train.lr": 2e-4,
      "train.epochs": 12,
      "train.amp": true,
      arch: "vit",
    });
    expect(JSON.parse(out)).toEqual({
      train: { lr: 2e-4, epochs: 12, amp: true },
      arch: "vit",
      sizes: [1, 2],
    });
  });

  it("TOML: keys of the top level, of tables and of inline tables", async () => {
    const text = [
      "seed = 3",
      "lr = 1e-3 # mutate: 1e-4..1e-2",
      "[model]",
      "depth = 6",
      'act = "relu"',
      "opt = { momentum = 0.9, nesterov = true }",
      "[[runs]]",
      "x = 1",
      "",
    ].join("\n");
    const found = await findParams("cfg.toml", text);
    expect(found.map((p) => [p.name, p.kind, p.raw])).toEqual([
      ["seed", "int", "3"],
      ["lr", "float", "1e-3"],
      ["model.depth", "int", "6"],
      ["model.act", "string", '"relu"'],
      ["model.opt.momentum", "float", "0.9"],
      ["model.opt.nesterov", "bool", "true"],
    ]);
    expect(found[1]!.comment).toBe("mutate: 1e-4..1e-2");
    const out = await roundTrip("cfg.toml", text, {
      lr: 5e-3,
      "model.depth": 4,
      "model.act": "gelu",
      "model.opt.momentum": 0.8,
      "model.opt.nesterov": false,
    });
    const read = python(
      "import json,sys,tomllib; print(json.dumps(tomllib.loads(sys.stdin.read())))",
      out,
    );
    expect(read).toEqual({
      seed: 3,
      lr: 5e-3,
      model: { depth: 4, act: "gelu", opt: { momentum: 0.8, nesterov: false } },
      runs: [{ x: 1 }],
    });
  });

  it("writes YAML strings that a loader would read as something else with quotes, and keeps digit groups", async () => {
    const text = "attn: auto  # mutate: auto|on|off\nnorm: layer\nversion: v1\n";
    const out = await roundTrip("c.yaml", text, {
      attn: "on",
      norm: "null",
      version: "1.5",
    });
    expect(out).toBe('attn: "on"  # mutate: auto|on|off\nnorm: "null"\nversion: "1.5"\n');
    const read = python("import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin)))", out);
    expect(read).toEqual({ attn: "on", norm: "null", version: "1.5" });
    expect(await roundTrip("t.py", "n = 1_000_000\n", { n: 2500000 })).toBe("n = 2_500_000\n");
  });

  it("a file that does not parse has no parameters", async () => {
    expect(await findParams("bad.json", '{"lr": 0.1,,}')).toEqual([]);
    expect(await findParams("bad.yaml", "a: [1, 2\nb: 3\n")).toEqual([]);
    expect(await findParams("notes.txt", "LR = 0.1\n")).toEqual([]);
  });

  it("rewrites only a value that is still as it was read", async () => {
    const [p] = await findParams("a.py", "lr = 0.1\n");
    expect(() => rewrite("lr = 0.2\n", [{ param: p!, raw: "0.3" }])).toThrow(/no longer 0.1/);
  });
});

describe("the search space", () => {
  const text = [
    "lr = 0.001",
    "depth = 8",
    "beta2 = 0.99",
    "dropout = 0.0",
    "batch = 2**10",
    'act = "relu"',
    'opt = "adam"  # mutate: adam|sgd',
    "seed = 42",
    "off = 3  # mutate: off",
    "flag = True",
    "",
  ].join("\n");

  it("infers bounds: log scale for positive floats, integers as integers, fractions at most 1, choices from comments", async () => {
    const { dimensions: dims } = dimensions(await findParams("train.py", text), undefined);
    const shape = Object.fromEntries(
      dims.map((d) => [d.key, [d.type, d.low, d.high, d.log, d.choices]]),
    );
    expect(shape).toEqual({
      lr: ["float", 0.0001, 0.01, true, []],
      depth: ["int", 2, 32, true, []],
      beta2: ["float", 0.099, 1, false, []],
      dropout: ["float", 0, 1, false, []],
      batch: ["int", 7, 13, false, []],
      opt: ["choice", 0, 0, false, ["adam", "sgd"]],
      flag: ["choice", 0, 0, false, [false, true]],
    });
  });

  it("takes the named parameters only, with declared ranges, scales and choices; names a rule that matches nothing", async () => {
    const params = await findParams("train.py", text);
    const { dimensions: dims, unmatched } = dimensions(params, [
      { name: "lr", range: [1e-5, 1e-1], log: true },
      { name: "de*", range: [2, 12] },
      { name: "act", choices: ["relu", "gelu", "silu"] },
      { name: "seed", int: true, range: [0, 10] },
      { name: "missing" },
    ]);
    expect(unmatched).toEqual(["missing"]);
    const shape = Object.fromEntries(
      dims.map((d) => [d.key, [d.type, d.low, d.high, d.log, d.choices, d.declared]]),
    );
    expect(shape).toEqual({
      lr: ["float", 1e-5, 0.1, true, [], true],
      depth: ["int", 2, 12, false, [], true],
      act: ["choice", 0, 0, false, ["relu", "gelu", "silu"], true],
      seed: ["int", 0, 10, false, [], true],
    });
  });

  it("keeps the first commit's inferred bounds when a keep moved the value", async () => {
    const before = dimensions(
      await findParams("t.py", "lr = 0.001\nwd = 0.1  # mutate: 0.0..0.5\n"),
      undefined,
    ).dimensions;
    const after = dimensions(
      await findParams("t.py", "lr = 0.004\nwd = 0.3  # mutate: 0.0..0.5\n"),
      undefined,
    ).dimensions;
    const lr = anchored(after, before).find((d) => d.key === "lr")!;
    expect([lr.low, lr.high, paramValue(lr.param)]).toEqual([0.0001, 0.01, 0.004]);
    const wd = anchored(after, before).find((d) => d.key === "wd")!;
    expect([wd.low, wd.high]).toEqual([0, 0.5]);
  });

  it("merges the rules that name a parameter, later over earlier; globs skip marked ones and seeds, exact names do not", async () => {
    const params = await findParams(
      "t.py",
      "lr = 0.001\nlog_every = 10  # mutate: off\nseed = 3\nwd = 0.1  # mutate: 0.5 .. 0.01\nname = 'x'\nzero = 0.0\n",
    );
    const one = dimensions(params, [
      { name: "*" },
      { name: "lr", range: [1e-4, 1e-2] },
      { name: "lr", log: true },
    ]);
    const shape = Object.fromEntries(one.dimensions.map((d) => [d.key, [d.low, d.high, d.log]]));
    expect(shape).toEqual({ lr: [1e-4, 1e-2, true], wd: [0.01, 0.5, false], zero: [0, 1, false] });
    expect(one.problems).toEqual([]);
    const exact = dimensions(params, [{ name: "seed" }, { name: "log_every" }]);
    expect(exact.dimensions.map((d) => d.key)).toEqual(["seed", "log_every"]);
    const wrong = dimensions(params, [{ name: "name" }, { name: "zero", log: true }]);
    expect(wrong.problems).toEqual([
      "name is a string ('x'): give it choices",
      "zero cannot be searched on a log scale from 0: give it a range above 0",
    ]);
  });

  it("leaves files that are not UTF-8, manifests and lockfiles alone", async () => {
    const root = makeRepo({
      "latin1.py": "",
      "package.json": '{"version": 1}\n',
      "configs/a.yaml": "lr: 0.1\n",
    });
    writeFileSync(join(root, "latin1.py"), Buffer.from("name = 'caf\xe9'\nlr = 0.5\n", "latin1"));
    sh(root, "git add -A && git -c user.name=t -c user.email=t@t commit -qm latin1");
    const params = await editableParams(root, {
      editable: ["**"],
      protected: [],
      program: "program.md",
    });
    expect(params.map((p) => `${p.file}:${p.name}`)).toEqual(["configs/a.yaml:lr"]);
  });

  it("names a parameter by its file where two files assign it", async () => {
    const params = [
      ...(await findParams("a.py", "lr = 0.1\n")),
      ...(await findParams("b.yaml", "lr: 0.2\n")),
    ];
    expect(dimensions(params, undefined).dimensions.map((d) => d.key)).toEqual([
      "a.py:lr",
      "b.yaml:lr",
    ]);
    const only = dimensions(params, [{ name: "lr", file: "*.yaml" }]).dimensions;
    expect(only.map((d) => d.key)).toEqual(["b.yaml:lr"]);
  });
});

describe("what is not a parameter, and what cannot be searched", () => {
  it("takes no link, folder or missing file for an editable file, and never writes through one", async () => {
    const outside = join(tempDir(), "victim.yaml");
    writeFileSync(outside, "lr: 0.1\n");
    const root = makeRepo({ "real.yaml": "depth: 4\n" });
    sh(
      root,
      `ln -s ${outside} link.yaml && ln -s missing/x.yaml dangling.yaml && git add -A && git -c user.name=t -c user.email=t@t commit -qm links`,
    );
    const rules = { editable: ["*.yaml"], protected: [], program: "program.md" };
    const params = await editableParams(root, rules);
    expect(params.map((p) => `${p.file}:${p.name}`)).toEqual(["real.yaml:depth"]);
    const [depth] = dimensions(params, undefined).dimensions;
    sh(root, "rm real.yaml && ln -s link.yaml real.yaml");
    expect(() => applyEdits(root, [edit(depth!, 5)])).toThrow(
      /real.yaml is no longer a regular file/,
    );
    expect(readFileSync(outside, "utf8")).toBe("lr: 0.1\n");
  });

  it("reads a minus before a number only, and refuses values and choices that cannot be written", async () => {
    const params = await findParams(
      "t.py",
      "a = - 3\nb = --3\nc = 1e400\nd = 'x\\ty'\nbatch = 32  # mutate: shallow|deep\nwide = 64\nflag = True\n",
    );
    expect(params.map((p) => [p.name, paramValue(p)])).toEqual([
      ["a", -3],
      ["c", Number.POSITIVE_INFINITY],
      ["batch", 32],
      ["wide", 64],
      ["flag", true],
    ]);
    const { dimensions: dims, problems } = dimensions(params, [
      { name: "c" },
      { name: "batch" },
      { name: "wide", choices: [16, "auto", 48.5] },
      { name: "flag", choices: ["true", "false"] },
    ]);
    expect(problems).toEqual([
      "c has a value that is not a finite number (1e400)",
      "batch is a number (32): its choices must be numbers",
      "wide is a number (64): its choices must be numbers",
    ]);
    expect(dims.map((d) => [d.key, d.choices])).toEqual([["flag", [true, false]]]);
    // Settings that do not fit the value are refused, not bent.
    const more = await findParams("u.py", "beta2 = 0.99\nuse_bias = True\n");
    expect(
      dimensions(more, [
        { name: "beta2", int: true },
        { name: "use_bias", range: [0, 1] },
      ]).problems,
    ).toEqual([
      "beta2 is declared int but its value 0.99 is not a whole number",
      "use_bias is a boolean: it takes only choices, not a range, a log scale or int",
    ]);
  });

  it("writes a sampled float readably, inside even a narrow range", () => {
    const d = { low: 0.999, high: 0.99999, log: false } as Dimension;
    expect(readable(d, 0.9995123456)).toBe(0.99951235);
    expect(readable(d, 0.99999999)).toBe(0.99999);
    expect(readable({ low: 1e-5, high: 1e-1, log: true } as Dimension, 0.000123456)).toBe(
      0.0001235,
    );
    expect(readable({ low: 1000, high: 1010, log: false } as Dimension, 1003.4567)).toBe(1003.457);
  });
});
