import { lstatSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { git, gitRaw } from "./git.js";

/**
 * Taking one commit's change out of a later version when git's revert conflicts only
 * because a later change edited a neighbouring line (git wants three unchanged lines of
 * context around each change). Each of the commit's changes is moved by the lines that
 * later changes added or removed above it, and undone there if its lines are still as the
 * commit left them. Anything else (a later change of the same lines, or one at the very
 * place the commit inserted or deleted; added, deleted, binary or re-moded files; links; a
 * file without a final newline; text that is not UTF-8; a merge) is refused, as a conflict is.
 */

/** One side of a hunk without context: `count` lines from `start`; with none, the line they follow. */
interface Side {
  start: number;
  count: number;
}
interface Hunk {
  old: Side;
  new: Side;
  removed: string[];
  added: string[];
}

const HEADER = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/;

/** The hunks of one file's `git diff -U0`, or null for what is refused. */
function parseHunks(diff: string): Hunk[] | null {
  const hunks: Hunk[] = [];
  for (const line of diff.split("\n")) {
    const m = HEADER.exec(line);
    if (m) {
      const side = (start: string, count: string | undefined) => ({
        start: Number(start),
        count: count === undefined ? 1 : Number(count),
      });
      hunks.push({ old: side(m[1]!, m[2]), new: side(m[3]!, m[4]), removed: [], added: [] });
      continue;
    }
    const hunk = hunks.at(-1);
    if (!hunk) {
      if (/^(old mode|new file|deleted file|Binary files|GIT binary patch)/.test(line)) return null;
    } else if (line.startsWith("-")) hunk.removed.push(line.slice(1));
    else if (line.startsWith("+")) hunk.added.push(line.slice(1));
    else if (line.startsWith("\\")) return null; // no newline at the end of the file
  }
  return hunks;
}

/** Lines [from, to) of a side; an empty side is the gap after its start line. */
function span(side: Side): [number, number] {
  return side.count ? [side.start, side.start + side.count] : [side.start + 1, side.start + 1];
}

/**
 * How far a range of the file at the commit has moved in the later version, whose changes
 * are `later` (old sides at the commit); null where one of them touches it.
 */
function moved(range: Side, later: Hunk[]): number | null {
  const [from, to] = span(range);
  let offset = 0;
  for (const h of later) {
    const [start, end] = span(h.old);
    const apart = h.old.count > 0 || range.count > 0; // two insertions at one gap are not
    if (end < from || (end === from && apart)) offset += h.new.count - h.old.count;
    else if (!(start > to || (start === to && apart))) return null;
  }
  return offset;
}

/** The file's text with the commit's hunks undone at their places now, or null. */
function undone(text: string, hunks: Hunk[], later: Hunk[]): string | null {
  const lines = text.split("\n");
  const places: { at: number; hunk: Hunk }[] = [];
  for (const hunk of hunks) {
    const offset = moved(hunk.new, later);
    if (offset === null) return null;
    // A 0-based index: of the hunk's first line, or of the line after which it removed some.
    const at = hunk.new.count ? hunk.new.start - 1 + offset : hunk.new.start + offset;
    const now = lines.slice(at, at + hunk.new.count);
    if (now.length !== hunk.added.length || now.some((l, i) => l !== hunk.added[i])) return null;
    places.push({ at, hunk });
  }
  // From the bottom up, so that the places above stay where they were computed.
  for (const { at, hunk } of places.sort((a, b) => b.at - a.at))
    lines.splice(at, hunk.new.count, ...hunk.removed);
  return lines.join("\n");
}

/** Undoes `commit` in a clean worktree without context, staged; false (nothing changed) when refused. */
export async function revertWithoutContext(worktree: string, commit: string): Promise<boolean> {
  // Plumbing, so that no setting of the user's (prefixes, colours, external diff tools,
  // text conversion, merged hunks) changes what is parsed here.
  const status = (
    await git(worktree, [
      "diff-tree",
      "-r",
      "--name-status",
      "--no-renames",
      "-z",
      `${commit}^`,
      commit,
    ])
  )
    .split("\0")
    .filter(Boolean);
  const files: string[] = [];
  for (let i = 0; i < status.length; i += 2) {
    if (status[i] !== "M") return false;
    files.push(status[i + 1]!);
  }
  const texts = new Map<string, { mode: string; text: string }>();
  for (const file of files) {
    const path = join(worktree, file);
    // A regular file (no link) whose checked-out bytes are its stored ones (an attribute
    // that converts them on checkout would mix two encodings): the diffs' lines are stored
    // ones, spliced into these bytes.
    if (!lstatSync(path, { throwIfNoEntry: false })?.isFile()) return false;
    const [mode, , stored] = (
      await git(worktree, ["--literal-pathspecs", "ls-tree", "HEAD", "--", file])
    ).split(/\s/);
    if ((await git(worktree, ["hash-object", "--no-filters", "--", file])) !== stored) return false;
    const bytes = readFileSync(path);
    const text = bytes.toString("utf8");
    if (!Buffer.from(text, "utf8").equals(bytes)) return false; // not UTF-8: not rewritten
    // File names are names, not patterns (`[id].tsx`, `:f`).
    const diff = (args: string[]) =>
      gitRaw(worktree, [
        "--literal-pathspecs",
        "diff-tree",
        "-r",
        "-p",
        "-U0",
        "--inter-hunk-context=0",
        "--no-renames",
        ...args,
        "--",
        file,
      ]);
    const hunks = parseHunks((await diff([`${commit}^`, commit])).stdout);
    const later = parseHunks((await diff([commit, "HEAD"])).stdout);
    // A line that was not UTF-8 before the change reads as U+FFFD here: not restored.
    if (!hunks?.length || !later || hunks.some((h) => h.removed.some((l) => l.includes("\uFFFD"))))
      return false;
    const result = undone(text, hunks, later);
    if (result === null) return false;
    texts.set(file, { mode: mode!, text: result });
  }
  // Stored as computed, then checked out through the file's attributes (an encoding, line
  // ends): `git add` would convert the stored lines spliced in as if they were checked out.
  for (const [file, { mode, text }] of texts) {
    const blob = await git(worktree, ["hash-object", "-w", "--no-filters", "--stdin"], {
      input: text,
    });
    await git(worktree, ["update-index", "--cacheinfo", `${mode},${blob},${file}`]);
    await git(worktree, ["checkout-index", "--force", "--", file]);
  }
  return true;
}
