import { createHash } from "node:crypto";

/**
 * A unified diff (as `git diff` writes it) reduced to what makes it a change, so that two
 * hosts proposing the same edit are told apart from two proposing different ones.
 *
 * The rule: two diffs are the same change when they touch the same files (same paths,
 * same kind: added, deleted, renamed, mode change) and, file by file, remove and add the
 * same lines in the same order. What does not count:
 * - blob hashes (`index abc..def`) and the `diff --git` line, which repeat the paths;
 * - where in the file the change sits (hunk headers `@@ -12,3 +12,4 @@` and the function
 *   name after them), and the unchanged context lines around it: the same edit made on
 *   a parent that moved other lines is still the same idea;
 * - trailing whitespace, carriage returns, and "\ No newline at end of file";
 * - the order of the files (sorted by path).
 * Two edits of one line that differ only in where the line sits in its file therefore
 * count as one change; proposals are rarely told apart by that alone.
 */
export function normalizeDiff(diff: string): string {
  const files: { path: string; git: boolean; lines: string[] }[] = [];
  let current: (typeof files)[number] | undefined;
  // Lines of the open hunk still to come on each side: inside a hunk, "--- x" is a removed
  // line "-- x", not a file header, so the counts from the @@ line decide.
  let oldLeft = 0;
  let newLeft = 0;
  const start = (path: string, git: boolean) => {
    current = { path, git, lines: [] };
    files.push(current);
  };
  for (const raw of diff.replace(/\r\n?/g, "\n").split("\n")) {
    const line = raw.replace(/[ \t]+$/, "");
    if (oldLeft > 0 || newLeft > 0) {
      if (line.startsWith("\\")) continue;
      const kind = line[0] ?? " ";
      if (kind !== "+") oldLeft--;
      if (kind !== "-") newLeft--;
      if (kind === "+" || kind === "-") current?.lines.push(line);
      continue;
    }
    const hunk = /^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@/.exec(line);
    if (hunk) {
      oldLeft = Number(hunk[1] ?? 1);
      newLeft = Number(hunk[2] ?? 1);
      continue;
    }
    const header = /^diff --git a\/(.*) b\/(.*)$/.exec(line);
    if (header) {
      start(header[2]!, true);
      continue;
    }
    // A diff without `diff --git` lines (diff -u): each `---` outside a hunk starts a file,
    // named by its `+++` line unless that is /dev/null.
    if (line.startsWith("--- ") && !current?.git) start(plainPath(line), false);
    if (!current) continue;
    if (line.startsWith("+++ ") && !current.git && !line.endsWith("/dev/null"))
      current.path = plainPath(line);
    // Paths are kept only as whether a side is /dev/null (a file added or deleted).
    if ((line.startsWith("--- ") || line.startsWith("+++ ")) && line.endsWith("/dev/null"))
      current.lines.push(line);
    else if (FILE_FACTS.test(line)) current.lines.push(line);
  }
  return files
    .filter((f) => f.lines.length > 0)
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((f) => `file ${f.path}\n${f.lines.join("\n")}\n`)
    .join("");
}

/** The path of a `--- a/x` or `+++ b/x\t<date>` line, without its prefix and date. */
function plainPath(line: string): string {
  return line
    .slice(4)
    .split("\t")[0]!
    .replace(/^[ab]\//, "");
}

/** Header lines that say what happened to a file as a whole. */
const FILE_FACTS =
  /^(new file mode|deleted file mode|old mode|new mode|rename from|rename to|copy from|copy to|Binary files)/;

/** A stable key for "the same change": the SHA-256 of `normalizeDiff(diff)`, in hex. */
export function diffHash(diff: string): string {
  return sha256(normalizeDiff(diff));
}

/**
 * A stable key for a set of parameter values (what a `tune` proposal sets): the same
 * names with the same values give the same key, whatever their order. Numbers are keyed
 * by their value (1 and 1.0 are one value); strings and numbers stay apart ("1" is not 1).
 */
export function paramKey(values: Readonly<Record<string, string | number | boolean>>): string {
  const entries = Object.entries(values)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => [name, typeof value === "number" ? Number(value) : value]);
  return sha256(JSON.stringify(entries));
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
