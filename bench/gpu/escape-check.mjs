// Run from the repository root after `npm run build`: a replicate that starts a process in
// a session of its own (setsid) must not leave it running. Checks, on a given machine, that
// the harness can read other processes' environments in /proc and so find the escapee.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dist = join(process.cwd(), "dist");
const { runProcess } = await import(join(dist, "executors/process.js"));
const { isAlive } = await import(join(dist, "util/proc.js"));

const dir = mkdtempSync(join(tmpdir(), "escape-"));
const result = await runProcess({
  command: `setsid sleep 1000 & echo $! > child.pid; sleep 0.3; echo ---; echo "score: 1"`,
  cwd: dir,
  env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  logPath: join(dir, "run.log"),
  logLimit: 1_000_000,
  timeoutMs: 10_000,
  killGraceMs: 1000,
});
const escapee = Number(readFileSync(join(dir, "child.pid"), "utf8"));
const note = readFileSync(join(dir, "run.log"), "utf8").trim().split("\n").at(-1);
console.log(`escape-check exit ${result.exitCode} escapee alive: ${isAlive(escapee)} | ${note}`);
process.exitCode = isAlive(escapee) ? 1 : 0;
