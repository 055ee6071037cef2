import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { CLI, makeRepo, runCli, sh, tempDir } from "../helpers.js";

/**
 * What a sandboxed program could make the harness do outside the sandbox: mount a folder
 * through a link, write through a link, keep a set-user-ID file, read a planted link, or
 * pass it a descriptor the orchestrator inherited.
 */

/** A task whose replicate runs attack.sh; `lines` add fields or replace those of the same key. */
function task(lines: string[]): string {
  const keys = new Set(lines.map((l) => l.split(":")[0]));
  const base = [
    "editable: [attack.sh]",
    "run: sh attack.sh",
    "budget: 5s",
    "timeout: 30s",
    "kill_grace: 1s",
    "metric: { name: score, goal: minimize }",
    "judge: { policy: greedy }",
  ].filter((l) => !keys.has(l.split(":")[0]));
  return makeRepo({
    "autoresearch.yaml": [...base, ...lines].join("\n"),
    "attack.sh": 'echo ---; echo "score: 1"\n',
  });
}

function verdicts(root: string, tag: string) {
  const ledger = Ledger.open(root);
  const trials = ledger.trials(ledger.run(tag)!.id);
  const replicates = trials.flatMap((t) => ledger.replicates(t.id));
  ledger.close();
  return { trials, replicates };
}

/** Files with a set-user-ID or set-group-ID bit under `dir`. */
function setId(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && statSync(join(e.parentPath, e.name)).mode & 0o6000)
    .map((e) => join(e.parentPath, e.name));
}

describe("the harness around its sandbox", () => {
  it("setup cannot redirect what replicates may write, nor forge its own marker", async () => {
    const target = `/etc/ar-redirect-${process.pid}`;
    const root = task([
      // The compile caches and the setup marker are beside the cache setup writes, not in it.
      `setup: 'ln -s ../../../../../etc "$AR_CACHE_DIR/torch-inductor" ; ln -s /etc "$AR_CACHE_DIR/../compile-cache/torch-inductor" ; ln -s ${target}.ok "$AR_CACHE_DIR/../setup/x.ok" ; ls "$AR_CACHE_DIR/.." > "$AR_CACHE_DIR/seen"; true'`,
      `run: 'echo pwned > "$TORCHINDUCTOR_CACHE_DIR/ar-redirect-${process.pid}"; sh attack.sh'`,
      "sandbox: bwrap",
    ]);
    const run = await runCli(["run", "-C", root, "--tag", "s", "--max-trials", "1"]);
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(target)).toBe(false);
    expect(existsSync(`${target}.ok`)).toBe(false);
    // Setup saw nothing of the harness's folder but the cache and its own worktree.
    expect(readFileSync(join(root, ".autoresearch/cache/seen"), "utf8").split("\n").sort()).toEqual(
      ["", "cache", "worktrees"],
    );
    expect(
      existsSync(
        join(root, `.autoresearch/compile-cache/torch-inductor/ar-redirect-${process.pid}`),
      ),
    ).toBe(true);
  });

  it("refuses to mount a harness folder that a link makes point elsewhere", async () => {
    const root = task(["sandbox: bwrap"]);
    // As a setup without the sandbox could have left it.
    mkdirSync(join(root, ".autoresearch/compile-cache"), { recursive: true });
    symlinkSync("/etc", join(root, ".autoresearch/compile-cache/torch-inductor"));
    const run = await runCli(["run", "-C", root, "--tag", "l", "--max-trials", "1"]);
    expect(run.code).not.toBe(0);
    const { replicates } = verdicts(root, "l");
    expect(replicates[0]!.reason).toContain(
      "compile-cache/torch-inductor is a link (to /etc); the sandbox mounts no folder through a link: remove it",
    );
  });

  it("keeps a set-user-ID file a replicate leaves out of other users' reach, and passes no inherited descriptor in", async () => {
    const root = task([
      `run: 'cp /bin/sh "$TORCHINDUCTOR_CACHE_DIR/suid-sh" && chmod 4755 "$TORCHINDUCTOR_CACHE_DIR/suid-sh"; ls /proc/self/fd | tr "\\n" " "; echo; cat /proc/self/fd/20 2>&1 | head -1; sh attack.sh'`,
      "sandbox: bwrap",
    ]);
    const secret = join(tempDir(), "secret.txt");
    writeFileSync(secret, "inherited-secret\n");
    // The orchestrator gets descriptor 20 from its parent, without close-on-exec.
    const fd = openSync(secret, "r");
    const child = spawn(
      process.execPath,
      [CLI, "run", "-C", root, "--tag", "f", "--max-trials", "1"],
      {
        stdio: ["ignore", "ignore", "ignore", ...Array(17).fill("ignore"), fd],
      },
    );
    expect(await new Promise((r) => child.on("close", r))).toBe(0);
    const { replicates } = verdicts(root, "f");
    const log = readFileSync(replicates[0]!.logPath, "utf8");
    expect(log).not.toContain("inherited-secret");
    expect(log).toMatch(/^0 1 2 3 \n/m);
    // The copy is there, set-user-ID and the real root's, but no other user can reach it.
    const suid = join(root, ".autoresearch/compile-cache/torch-inductor/suid-sh");
    expect(setId(join(root, ".autoresearch"))).toEqual([suid]);
    expect(statSync(join(root, ".autoresearch")).mode & 0o077).toBe(0);
    const asNobody = spawnSync("su", ["-s", "/bin/sh", "nobody", "-c", `${suid} -p -c id`], {
      encoding: "utf8",
    });
    expect(asNobody.stdout).not.toContain("euid=0");
    expect(asNobody.stderr).toMatch(/Permission denied/);
  });

  it("a replicate cannot write the held-out check's result ahead of it, nor bind the harness's folder through a link", async () => {
    const root = task([
      `run: 'echo "{\\"heldout\\": -999}" > "$(dirname "$AR_RESULT_FILE")/verify.json"; sh attack.sh'`,
      "verify: { run: 'echo ---; echo heldout: 5', metric: heldout }",
      "sandbox: bwrap",
    ]);
    const run = await runCli(["run", "-C", root, "--tag", "h", "--max-trials", "1"]);
    expect(run.code, run.stderr).toBe(0);
    expect(verdicts(root, "h").trials[0]!.verify).toMatchObject({ metric: 5 });

    const link = join(tempDir(), "state");
    symlinkSync(join(root, ".autoresearch"), link);
    writeFileSync(
      join(root, "autoresearch.yaml"),
      `${readFileSync(join(root, "autoresearch.yaml"), "utf8").replace("sandbox: bwrap", `sandbox: { binds: ["${link}"] }`)}\n`,
    );
    sh(root, "git -c user.name=t -c user.email=t@t commit -qam 'bind a link'");
    const bound = await runCli(["run", "-C", root, "--tag", "b", "--max-trials", "1"]);
    expect(bound.code).toBe(3);
    expect(bound.stderr).toContain("would show the harness's own folder");
  });

  it("without the sandbox, a trial folder swapped for a link is not worked through", async () => {
    const victim = tempDir("ar-victim-");
    writeFileSync(join(victim, "a"), "keep\n");
    symlinkSync("/etc/hostname", join(victim, "lnk"));
    const root = task([
      `run: 'd=$(dirname "$AR_RESULT_FILE"); mv "$d" "$d.x" && ln -s ${victim} "$d"; sh attack.sh'`,
      "sandbox: none",
    ]);
    await runCli(["run", "-C", root, "--tag", "m", "--max-trials", "1"]);
    expect(readdirSync(victim).sort()).toEqual(["a", "lnk"]);
    expect(verdicts(root, "m").trials[0]).toMatchObject({
      verdict: "tampered",
      reason: expect.stringContaining(
        `the replicate replaced its trial's folder with a link to ${victim}; nothing was read or removed through it`,
      ),
    });
  });

  it("without the sandbox, links a held-out check plants in the trial's folder are removed unread", async () => {
    const secret = join(tempDir(), "secret.txt");
    writeFileSync(secret, "verify-secret\n");
    const root = task([
      `verify: 'd=$(dirname "$AR_RESULT_FILE"); rm -f "$d/diff.patch"; ln -s ${secret} "$d/diff.patch"; sh attack.sh'`,
      "sandbox: none",
    ]);
    const run = await runCli(["run", "-C", root, "--tag", "v", "--max-trials", "1"]);
    expect(run.code, run.stderr).toBe(0);
    const { trials } = verdicts(root, "v");
    expect(trials[0]!.verify).toMatchObject({ metric: null, diverged: true });
    expect(trials[0]!.verify!.reason).toContain("diff.patch (a symbolic link");
    const report = await runCli(["report", "-C", root]);
    expect(report.code).toBe(0);
    expect(readFileSync(join(root, ".autoresearch/runs/v/report.html"), "utf8")).not.toContain(
      "verify-secret",
    );
    rmSync(secret);
  });
});
