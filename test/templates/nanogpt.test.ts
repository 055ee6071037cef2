import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Duplex } from "node:stream";
import { beforeAll, describe, expect, it } from "vitest";
import { parseSummary } from "../../src/metrics/parse.js";
import { initTask } from "../../src/task/init.js";
import { loadTask } from "../../src/task/load.js";
import type { Task } from "../../src/task/task.js";
import { PYTHON, ROOT, tempDir } from "../helpers.js";

// The GPU task shrunk until it trains on two CPU cores in seconds; every part still runs.
const TINY = {
  NANOGPT_VOCAB: "512",
  NANOGPT_SEQ_LEN: "64",
  NANOGPT_EVAL_TOKENS: "1024",
  DEPTH: "2",
  NANOGPT_HEAD_DIM: "32",
  NANOGPT_DEVICE_BATCH: "8",
  NANOGPT_TOTAL_BATCH: "1024",
};

const SUMMARY_KEYS = [
  "val_bpb",
  "training_seconds",
  "total_seconds",
  "peak_vram_mb",
  "mfu_percent",
  "total_tokens_M",
  "num_steps",
  "num_params_M",
  "depth",
  "startup_seconds",
  "waited_seconds",
  "tokens_per_sec",
  "device_batch",
];

describe("the nanogpt template", () => {
  let root: string;
  let task: Task;
  let env: Record<string, string>;
  let setup: { status: number | null; output: string };

  /** Runs a program in the task with the tiny configuration; its output and exit code. */
  const exec = (file: string, args: string[], extra: Record<string, string> = {}) => {
    const result = spawnSync(file, args, {
      cwd: root,
      env: { ...env, ...extra },
      encoding: "utf8",
    });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  };
  /** A shell command, as the harness runs the task's setup and run. */
  const shell = (command: string, extra: Record<string, string> = {}) =>
    exec("/bin/sh", ["-c", command], extra);

  beforeAll(async () => {
    root = await initTask("nanogpt", join(tempDir(), "nanogpt"));
    task = loadTask(root);
    // Half the novel as plain text and half as .xz: several files, both readers.
    const novel = join(ROOT, "templates/tiny-lm/data/pride-and-prejudice.txt");
    const data = tempDir();
    const split = `import lzma, sys
text = open(sys.argv[1], "rb").read()
half = len(text) // 2
open(sys.argv[2] + "/a.txt", "wb").write(text[:half])
lzma.open(sys.argv[2] + "/b.txt.xz", "wb").write(text[half:])`;
    expect(spawnSync(PYTHON, ["-c", split, novel, data]).status).toBe(0);
    env = {
      ...(process.env as Record<string, string>),
      ...TINY,
      PYTHON,
      AR_CACHE_DIR: join(tempDir(), "cache"),
      NANOGPT_TEXT: `${data}/a.txt ${data}/b.txt.xz`,
      PYTHONUNBUFFERED: "1",
    };
    setup = shell(task.setup!);
  });

  it("is a GPU task whose setup refuses to run without a corpus", () => {
    expect(task).toMatchObject({
      name: "nanogpt",
      editable: ["train.py"],
      protected: ["prepare.py"],
      budget: 300,
      metric: { name: "val_bpb", goal: "minimize" },
      resources: { gpus: 1 },
      overlap: true,
    });
    expect(task.secondary.map((s) => s.name)).toEqual([
      "peak_vram_mb",
      "mfu_percent",
      "tokens_per_sec",
      "num_steps",
    ]);
    const { NANOGPT_TEXT: _, ...without } = env;
    const unset = spawnSync("/bin/sh", ["-c", task.setup!], { cwd: root, env: without });
    expect(unset.status).not.toBe(0);
    expect(String(unset.stderr)).toContain("set NANOGPT_TEXT");
    const bare = shell(`${PYTHON} prepare.py`);
    expect(bare.status).toBe(2);
    expect(bare.output).toContain("give --text FILE... or --url URL");
  });

  it("prepares the data once, then trains and prints the summary block", () => {
    expect(setup.output).toMatch(/tokenizer: 512 tokens/);
    expect(setup.status).toBe(0);
    expect(shell(task.setup!).output).toContain("already prepared");
    const meta = JSON.parse(readFileSync(join(env.AR_CACHE_DIR!, "nanogpt/meta.json"), "utf8"));
    // About 2% of the text is held out, in pieces spread over the whole corpus.
    expect(meta.val_tokens / (meta.train_tokens + meta.val_tokens)).toBeGreaterThan(0.01);
    expect(meta.val_tokens / (meta.train_tokens + meta.val_tokens)).toBeLessThan(0.03);

    const run = shell(task.run, { AR_TIME_BUDGET: "3", AR_SEED: "1" });
    expect(run.status, run.output).toBe(0);
    const summary = parseSummary(run.output);
    expect(Object.keys(summary)).toEqual(SUMMARY_KEYS);
    expect(Number.isFinite(summary.val_bpb)).toBe(true);
    // A uniform guess over 512 tokens costs about 4 bits per byte here; 3 s of training helps.
    expect(summary.val_bpb).toBeGreaterThan(1);
    expect(summary.val_bpb).toBeLessThan(4);
    expect(summary.training_seconds).toBeGreaterThanOrEqual(3);
    expect(summary.num_steps).toBeGreaterThan(10);
    expect(summary.depth).toBe(2);
    // Where the time outside training went: every phase, adding up to what was not training.
    const line = run.output.match(/^outside training: (.*)$/m);
    expect(line, run.output).not.toBeNull();
    const phases = new Map<string, number>();
    for (const part of line![1]!.split(", ")) {
      const [, name, seconds] = part.match(/^(.+) ([\d.]+)s$/)!;
      phases.set(name!, Number(seconds));
    }
    expect([...phases.keys()]).toEqual([
      "imports",
      "compiler import",
      "model",
      "data",
      "first step",
      "untimed steps",
      "evaluation",
    ]);
    const outside = [...phases.values()].reduce((a, b) => a + b, 0);
    const notTraining = summary.total_seconds! - summary.training_seconds!;
    expect(Math.abs(outside - notTraining)).toBeLessThan(0.5);
    // A memory cap that is not a number of GiB stops the replicate before it trains.
    const capped = shell(task.run, { AR_TIME_BUDGET: "1", NANOGPT_MEMORY_GB: "16GB" });
    expect(capped.status).not.toBe(0);
    expect(capped.output).toContain("NANOGPT_MEMORY_GB='16GB': give the GiB");
  });

  it("with overlap, waits at the harness's gate before its first step, its times without the wait", async () => {
    // The harness's side of AR_GATE: a socket at descriptor 3, answered 1.5 s after the ask.
    const child = spawn("/bin/sh", ["-c", task.run], {
      cwd: root,
      env: { ...env, AR_TIME_BUDGET: "2", AR_GATE: "3" },
      stdio: ["ignore", "pipe", "pipe", "pipe"],
    });
    const spawnedAt = Date.now();
    let output = "";
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    const gate = child.stdio[3] as Duplex;
    let askedAt = 0;
    gate.once("data", () => {
      askedAt = Date.now();
      setTimeout(() => gate.write("1"), 1500);
    });
    const status = await new Promise<number | null>((r) => child.on("exit", r));
    expect(status, output).toBe(0);
    expect(askedAt).toBeGreaterThan(0);
    const summary = parseSummary(output);
    expect(summary.waited_seconds).toBeGreaterThanOrEqual(1.4);
    // Its own time and the wait add up to its time on the clock.
    const wall = (Date.now() - spawnedAt) / 1000;
    expect(Math.abs(summary.total_seconds! + summary.waited_seconds! - wall)).toBeLessThan(1);
    const phases = output.match(/^outside training: (.*)$/m)![1]!.split(", ");
    const outside = phases.map((p) => Number(p.match(/([\d.]+)s$/)![1])).reduce((a, b) => a + b);
    expect(Math.abs(outside - (summary.total_seconds! - summary.training_seconds!))).toBeLessThan(
      0.5,
    );

    // End of file at the gate: the harness is gone, and the replicate ends without training.
    const orphan = spawn("/bin/sh", ["-c", task.run], {
      cwd: root,
      env: { ...env, AR_TIME_BUDGET: "2", AR_GATE: "3" },
      stdio: ["ignore", "pipe", "pipe", "pipe"],
    });
    let said = "";
    orphan.stderr!.on("data", (d) => (said += d));
    (orphan.stdio[3] as Duplex).once("data", () => (orphan.stdio[3] as Duplex).destroy());
    const code = await new Promise<number | null>((r) => orphan.on("exit", r));
    expect(code).not.toBe(0);
    expect(said).toContain("the harness ended before this replicate's turn");
  });

  it("keeps torch's bytecode beside its kernels where the environment forbids writing it and torch ships none", () => {
    const cache = join(tempDir(), "cache");
    const folder = join(cache, "nanogpt/inductor/python-bytecode");
    const noBytecode = { AR_CACHE_DIR: cache, PYTHONDONTWRITEBYTECODE: "1" };
    // This machine's torch ships its bytecode: Python's own is used, nothing is written.
    expect(exec(PYTHON, ["-c", "import prepare, torch"], noBytecode).status).toBe(0);
    expect(existsSync(folder)).toBe(false);
    // An image whose torch has none (as if its __pycache__ folders were missing): kept.
    const shipsNone = [
      "import importlib.util, sys",
      "importlib.util.cache_from_source = lambda path: '/nonexistent.pyc'",
      "import prepare, torch",
      "print(sys.pycache_prefix)",
    ].join("\n");
    const kept = exec(PYTHON, ["-c", shipsNone], noBytecode);
    expect(kept.status, kept.output).toBe(0);
    expect(kept.output.trim()).toBe(folder);
    const torchInit = spawnSync(PYTHON, ["-c", "import torch; print(torch.__file__)"], {
      encoding: "utf8",
    }).stdout.trim();
    const cached = readdirSync(join(folder, dirname(torchInit)));
    expect(cached.some((name) => name.startsWith("__init__."))).toBe(true);
  });

  it("trains with sliding-window attention, the way a researcher would switch it on", () => {
    const source = readFileSync(join(root, "train.py"), "utf8");
    expect(source).toMatch(/^WINDOW_PATTERN = "L"/m);
    writeFileSync(
      join(root, "train.py"),
      source.replace(/^WINDOW_PATTERN = "L"/m, 'WINDOW_PATTERN = "SL"'),
    );
    const run = shell(task.run, { AR_TIME_BUDGET: "1", DEPTH: "3" });
    writeFileSync(join(root, "train.py"), source);
    expect(run.status, run.output).toBe(0);
    expect(run.output).toContain("windows [16, 64, 64]");
    expect(parseSummary(run.output).val_bpb).toBeLessThan(5);
  });

  it("scores a uniform model at log2(vocabulary) bits per token, BOS excluded, and refuses one that peeks", () => {
    const check = `
import math, torch, prepare
tokenizer = prepare.load_tokenizer()
text = "Ünïcode — naïve café\\n    indented = 1234567;\\tx"
ids = tokenizer.encode(text)
assert ids[0] == tokenizer.bos_id and tokenizer.decode(ids[1:]) == text, ids

class Uniform(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))
    def forward(self, x):
        return torch.zeros(*x.shape, tokenizer.vocab_size)

rows = prepare.validation_rows()
assert rows.shape == (prepare.EVAL_TOKENS // prepare.MAX_SEQ_LEN, prepare.MAX_SEQ_LEN + 1), rows.shape
assert (rows[:, 0] == tokenizer.bos_id).all()
targets = [t for t in rows[:, 1:].flatten().tolist() if t != tokenizer.bos_id]
expected = math.log2(tokenizer.vocab_size) * len(targets) / len(tokenizer.decode_bytes(targets))
bpb = prepare.evaluate_bpb(Uniform())
assert abs(bpb - expected) < 1e-6 * expected, (bpb, expected)

class Peeking(Uniform):
    def forward(self, x):  # every position sees the whole row
        return (x.float().mean(1) / 100)[:, None, None].expand(*x.shape, tokenizer.vocab_size)

try:
    prepare.evaluate_bpb(Peeking())
    raise AssertionError("a model that sees later tokens was scored")
except SystemExit as stop:
    assert "not causal" in str(stop), stop
print("ok", bpb)
`;
    const result = exec(PYTHON, ["-c", check]);
    expect(result.output).toMatch(/^ok \d/m);
    expect(result.status).toBe(0);
  });
});
