import { createHash } from "node:crypto";
import { lstatSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import picomatch from "picomatch";
import { gitRaw } from "./git.js";

/** Git mode and blob id of each protected path, as committed. */
export type Fingerprint = Map<string, string>;

/** The protected files of `commit`, as recorded by git (no checkout needed). */
export async function protectedFingerprint(
  repo: string,
  commit: string,
  globs: string[],
): Promise<Fingerprint> {
  const result: Fingerprint = new Map();
  if (globs.length === 0) return result;
  const match = picomatch(globs, { dot: true });
  const out = (await gitRaw(repo, ["ls-tree", "-r", "-z", "--full-tree", commit])).stdout;
  for (const entry of out.split("\0")) {
    const tab = entry.indexOf("\t");
    if (tab < 0) continue;
    const [mode, , id] = entry.slice(0, tab).split(" ");
    const path = entry.slice(tab + 1);
    if (match(path)) result.set(path, `${mode} ${id}`);
  }
  return result;
}

/**
 * Protected paths whose file in `worktree` no longer matches the commit: changed,
 * deleted, or replaced by a link. Hashing the files as git blobs makes the check
 * independent of any state kept in memory, so it also works after a restart.
 */
export function tamperedFiles(worktree: string, expected: Fingerprint): string[] {
  const changed: string[] = [];
  for (const [path, want] of expected) {
    const entry = worktreeEntry(join(worktree, path));
    if (entry !== want && checkedOutCrlf(join(worktree, path), want) !== want) changed.push(path);
  }
  return changed;
}

function worktreeEntry(file: string): string {
  try {
    const stat = lstatSync(file);
    if (stat.isSymbolicLink()) return `120000 ${blobId(Buffer.from(readlinkSync(file)))}`;
    if (!stat.isFile()) return "other";
    const mode = stat.mode & 0o111 ? "100755" : "100644";
    return `${mode} ${blobId(readFileSync(file))}`;
  } catch {
    return "missing";
  }
}

/**
 * The entry of a file that git checked out with CRLF line ends (`eol=crlf`, `core.autocrlf`)
 * from a blob with LF ones, as git would hash it back; the same line ends otherwise.
 */
function checkedOutCrlf(file: string, want: string): string | null {
  if (!want.startsWith("100")) return null;
  try {
    const content = readFileSync(file);
    if (!content.includes("\r\n")) return null;
    const lf = Buffer.from(content.toString("latin1").replaceAll("\r\n", "\n"), "latin1");
    return `${lstatSync(file).mode & 0o111 ? "100755" : "100644"} ${blobId(lf)}`;
  } catch {
    return null;
  }
}

function blobId(content: Buffer): string {
  return createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
}
