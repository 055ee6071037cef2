import { closeSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { isSecretName } from "./secrets.js";

/**
 * Keeps credentials out of `/proc/<pid>/environ`, which any process of the same user can
 * read (a replicate without the sandbox, say). That file shows the block of memory the
 * process started with, not its current environment: each secret is first copied to a
 * new string (setenv's), then its value in the original block is overwritten with
 * spaces, through `/proc/self/mem`. Linux only; returns how many values were hidden, or
 * null when the kernel refused (the keys then stay readable there).
 */
export function hideSecretsFromProc(env: NodeJS.ProcessEnv = process.env): number | null {
  if (process.platform !== "linux") return 0;
  const names = Object.keys(env).filter((n) => isSecretName(n) && env[n]);
  if (names.length === 0) return 0;
  for (const name of names) {
    const value = env[name]!;
    delete env[name];
    env[name] = value;
  }
  let fd: number | null = null;
  try {
    // Fields 50 and 51 of stat (counted from 1): where the starting environment lies.
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const start = Number(fields[47]);
    const end = Number(fields[48]);
    if (!(end > start)) return null;
    fd = openSync("/proc/self/mem", "r+");
    const block = Buffer.alloc(end - start);
    readSync(fd, block, 0, block.length, start);
    let hidden = 0;
    let at = 0;
    while (at < block.length) {
      const stop = block.indexOf(0, at);
      const entryEnd = stop === -1 ? block.length : stop;
      const entry = block.subarray(at, entryEnd).toString("latin1");
      const eq = entry.indexOf("=");
      if (eq > 0 && names.includes(entry.slice(0, eq))) {
        const value = Buffer.alloc(entryEnd - at - eq - 1, " ");
        writeSync(fd, value, 0, value.length, start + at + eq + 1);
        hidden++;
      }
      at = entryEnd + 1;
    }
    return hidden;
  } catch {
    return null;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
