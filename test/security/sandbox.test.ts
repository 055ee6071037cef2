import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { FIXTURES, makeRepo, runCli, tempDir } from "../helpers.js";

/**
 * Hostile replicates and researchers, run for real through `autoresearch run`: first in
 * bubblewrap, where nothing outside their worktree may change and nothing they start may
 * outlive them; then with `sandbox: none`, to show what the harness catches on its own.
 * Each attack is one trial (the `attacker.mjs` researcher picks it by trial number).
 */

const SECRET = "ar-sandbox-secret-8d1f2c";
const ATTACKER = join(FIXTURES, "agents", "attacker.mjs");
const ATTACKS = JSON.parse(
  execFileSync(process.execPath, [ATTACKER, "--list"], { encoding: "utf8" }),
) as { name: string; bomb?: boolean }[];

interface Outcome {
  attack: string;
  verdict: string;
  reason: string;
  said: string;
}

let server: Server;
let connections = 0;
let port = 0;
beforeAll(async () => {
  server = createServer((socket) => {
    connections++;
    socket.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as { port: number }).port;
});
afterAll(() => server.close());

/** Processes whose command line holds `mark`: what an attack started and the sandbox should have ended. */
function marked(mark: string): number[] {
  const found: number[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p)))
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(mark)) found.push(Number(pid));
    } catch {}
  return found;
}

const hash = (file: string) =>
  existsSync(file) ? createHash("sha256").update(readFileSync(file)).digest("hex") : "absent";

/** Everything outside the worktrees an attack aimed at, as it is now. */
function outside(root: string, home: string, etc: string) {
  return {
    home: readdirSync(home)
      .filter((name) => name !== "attacker.mjs")
      .sort()
      .join(","),
    etc: hash(etc),
    taskFile: hash(join(root, "autoresearch.yaml")),
    decoy: hash(join(root, ".autoresearch/worktrees/decoy/attack.sh")),
    cache: hash(join(root, ".autoresearch/cache/valid.bin")),
    gitConfig: hash(join(root, ".git/config")),
  };
}

async function attack(mode: "bwrap" | "none") {
  const home = tempDir("ar-home-");
  mkdirSync(join(home, ".config"));
  writeFileSync(join(home, ".config", "token"), `${SECRET}\n`);
  copyFileSync(ATTACKER, join(home, "attacker.mjs"));
  const etc = `/etc/ar-pwned-${process.pid}-${mode}`;
  const mark = `ar-mark-${process.pid}-${mode}`;
  const targets = {
    TARGET_ETC: etc,
    TARGET_SECRET: join(home, ".config", "token"),
    TARGET_PORT: String(port),
    TARGET_MARK: mark,
    TARGET_SKIP_BOMBS: mode === "none" ? "1" : "0",
  };
  const root = makeRepo({
    "attack.sh": 'echo ---; echo "score: 1"\n',
    "autoresearch.yaml": "placeholder\n",
  });
  const yaml = [
    "name: attacks",
    "editable: [attack.sh]",
    `setup: 'echo original > "$AR_CACHE_DIR/valid.bin"'`,
    "run: sh attack.sh",
    "budget: 5s",
    "timeout: 30s",
    "kill_grace: 1s",
    "metric: { name: score, goal: minimize }",
    "judge: { policy: greedy }",
    // From the home folder, which the researcher's sandbox shows no more of than the script.
    `researcher: { kind: command, command: "node ${join(home, "attacker.mjs")}" }`,
    `sandbox: { mode: ${mode}, max_processes: 64, max_file_size: 1MiB }`,
    "env:",
    `  TARGET_ROOT: "${root}"`,
    ...Object.entries(targets).map(([k, v]) => `  ${k}: "${v}"`),
    "",
  ].join("\n");
  writeFileSync(join(root, "autoresearch.yaml"), yaml);
  execFileSync(
    "/bin/sh",
    ["-c", "git add -A && git -c user.name=t -c user.email=t@t commit -qm task"],
    {
      cwd: root,
    },
  );
  // Another trial's worktree, as a run with several slots has them.
  mkdirSync(join(root, ".autoresearch/worktrees/decoy"), { recursive: true });
  writeFileSync(join(root, ".autoresearch/worktrees/decoy/attack.sh"), "echo innocent\n");
  const attacks = ATTACKS.filter((a) => !(mode === "none" && a.bomb));
  // The cache as setup will write it, before any replicate runs.
  const before = {
    ...outside(root, home, etc),
    cache: createHash("sha256").update("original\n").digest("hex"),
  };
  const seen = connections;
  // One trial at a time: which of several overlapping trials wrote outside is another matter.
  const cli = await runCli(
    ["run", "--tag", "a", "--lookahead", "0", "--max-trials", String(attacks.length + 1)],
    {
      cwd: root,
      env: { HOME: home, TARGET_ROOT: root, TARGET_API_KEY: SECRET, ...targets },
      timeoutMs: 300_000,
    },
  );
  const after = outside(root, home, etc);
  const left = marked(mark);
  for (const pid of left) process.kill(pid, "SIGKILL");
  rmSync(etc, { force: true });

  const ledger = Ledger.open(root);
  const run = ledger.run("a")!;
  const outcomes: Outcome[] = ledger
    .trials(run.id)
    .filter((t) => t.n > 0)
    .map((t) => {
      const log = join(root, ".autoresearch/runs/a/trials", String(t.n), "run.log");
      const said = (existsSync(log) ? readFileSync(log, "utf8") : "")
        .split("\n")
        .filter(
          (l) => /: (REACHED|BLOCKED|started|\d+ (processes|bytes))/.test(l) || l.includes(SECRET),
        )
        .concat(t.hypothesis ? [t.hypothesis] : [])
        .join(" ")
        .replace(/\s+/g, " ");
      // An invalid proposal has no title of its own: the trial's number says which attack it was.
      return {
        attack: attacks[t.n - 1]?.name ?? `#${t.n}`,
        verdict: t.verdict ?? "",
        reason: t.reason ?? "",
        said,
      };
    });
  ledger.close();
  return { cli, root, before, after, left, connections: connections - seen, outcomes, attacks };
}

/** Every file the run wrote, every git object and the ledger, as one text to search. */
function everything(root: string): string {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && statSync(path).size < 50_000_000)
        files.push(readFileSync(path, "latin1"));
    }
  };
  walk(join(root, ".autoresearch"));
  const objects = execFileSync("git", ["cat-file", "--batch-all-objects", "--batch"], {
    cwd: root,
    encoding: "latin1",
    maxBuffer: 512 * 1024 * 1024,
  });
  return files.join("\n") + objects;
}

function table(rows: Outcome[]): string {
  return rows.map((r) => `  ${r.attack.padEnd(48)} ${r.verdict.padEnd(9)} ${r.said}`).join("\n");
}

describe("the sandbox against hostile replicates and researchers", () => {
  it("with bubblewrap: nothing outside changes, nothing is read or reached, nothing outlives its trial", async () => {
    const r = await attack("bwrap");
    console.log(`sandbox: bwrap\n${table(r.outcomes)}`);
    expect(r.cli.code, r.cli.stderr).toBe(0);
    expect(r.cli.stdout).toContain("sandbox: bubblewrap (no network, at most 64 processes");
    expect(r.outcomes.map((o) => o.attack)).toEqual(r.attacks.map((a) => a.name));
    for (const o of r.outcomes) {
      expect(o.verdict, o.attack).not.toBe("");
      expect(o.reason, o.attack).not.toBe("");
      expect(o.said, o.attack).not.toContain("REACHED");
    }
    expect(r.after).toEqual(r.before);
    expect(r.connections).toBe(0);
    expect(r.left).toEqual([]);
    expect(everything(r.root)).not.toContain(SECRET);
    const bomb = r.outcomes.find((o) => o.attack === "fork bomb")!;
    const processes = Number(/fork bomb: (\d+) processes/.exec(bomb.said)?.[1]);
    expect(processes).toBeGreaterThan(32);
    expect(processes).toBeLessThanOrEqual(64);
    const big = r.outcomes.find((o) => o.attack === "file-size bomb")!;
    expect(big.said).toContain("file-size bomb: 1048576 bytes");
    // The capped file is still a file the task does not declare; the reason says how to.
    expect(big.verdict).toBe("tampered");
    expect(big.reason).toContain('declare them in autoresearch.yaml: outputs: ["big.bin"]');
    // A crash the sandbox caused says so, and what to change.
    expect(r.outcomes.find((o) => o.attack === "crash on a read-only write")).toMatchObject({
      verdict: "crash",
      reason: expect.stringContaining(
        "only the worktree, /tmp and the trial's folder are writable",
      ),
    });
  });

  it("without it: what the harness catches on its own, and what it cannot", async () => {
    const r = await attack("none");
    console.log(`sandbox: none\n${table(r.outcomes)}`);
    expect(r.cli.code, r.cli.stderr).toBe(0);
    expect(r.cli.stdout).toContain("sandbox: none");
    const verdict = (name: string) => r.outcomes.find((o) => o.attack === name)!;
    // Caught: writes to the files that steer the harness's git and judge the trials.
    expect(verdict("write the task's .git").verdict).toBe("tampered");
    expect(verdict("write the task's checkout").verdict).toBe("tampered");
    expect(verdict("researcher: write the task's .git").verdict).toBe("invalid");
    expect(r.after.gitConfig).toBe(r.before.gitConfig);
    // Not caught: the rest of the machine is the replicate's to read and write.
    expect(verdict("write $HOME").said).toContain("REACHED");
    expect(verdict("read a secrets file").said).toContain(SECRET);
    // The orchestrator blanked its keys in the environment it started with.
    expect(verdict("read the orchestrator's keys").said).toContain("BLOCKED");
    expect(r.after.cache).not.toBe(r.before.cache);
    // The file-size cap holds without the sandbox too.
    expect(verdict("file-size bomb").said).toContain("file-size bomb: 1048576 bytes");
    expect(r.connections).toBeGreaterThan(0);
    // A daemon that keeps the harness's mark is ended; one that drops it with env -i is not.
    expect(r.left.length).toBeGreaterThan(0);
  });
});
