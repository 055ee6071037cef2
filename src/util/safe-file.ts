import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  rmSync,
  type Stats,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";

/**
 * The harness's own files in a trial's folder (a replicate's log and result file, the
 * trial's diff and metrics) lie where the replicate can reach them: it is told their paths
 * (AR_PROCESS, AR_RESULT_FILE) and runs as the same user. It may replace one with a link
 * to a file of the user's (which capping the log would then cut), with /dev/zero or a
 * FIFO (which a plain read never finishes), or make it huge. Every open here refuses a
 * link (O_NOFOLLOW) and cannot block (O_NONBLOCK); what was opened is checked on its
 * descriptor (fstat, so no swap can slip between a check and the open) to be a regular
 * file with no other name (a hard link shares its content with a file elsewhere); every
 * read is bounded.
 */

export interface FileInfo {
  size: number;
  mtimeMs: number;
}

export interface OpenedFile extends FileInfo {
  fd: number;
}

export interface FileText extends FileInfo {
  text: string;
}

/** Why a harness file was not opened: each one a file that is not the harness's to read. */
export type Refusal =
  | { refused: "link"; target: string | null }
  | { refused: "hardlink"; names: number }
  | { refused: "special"; what: string }
  | { refused: "large"; size: number; limit: number }
  | { refused: "unreadable"; code: string };

export function isRefusal(value: object): value is Refusal {
  return "refused" in value;
}

/**
 * Whether the replicate must have put this file there (a link, a device, a FIFO, a
 * folder): the harness only ever creates regular files. A file too large or unreadable
 * may be an honest program's mistake.
 */
export function isPlanted(refusal: Refusal): boolean {
  return (
    refusal.refused === "link" || refusal.refused === "hardlink" || refusal.refused === "special"
  );
}

/** What the replicate put in place of a harness file, in words ("a symbolic link to /x"). */
export function plantedAs(refusal: Refusal): string {
  switch (refusal.refused) {
    case "link":
      return `a symbolic link${refusal.target === null ? "" : ` to ${printable(refusal.target)}`}`;
    case "hardlink":
      return `a hard link (one of ${refusal.names} names of the same file)`;
    case "special":
      return refusal.what;
    default:
      return "a regular file";
  }
}

/**
 * A link's target as the replicate chose it, fit for a one-line reason and results.tsv:
 * control characters (a tab, a newline, a terminal escape) shown as "?", at most 200.
 */
function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes
  const line = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

/** A refused file in words, for a reason: `what` names it ("the log", "the result file"). */
export function describeRefusal(what: string, refusal: Refusal): string {
  switch (refusal.refused) {
    case "large":
      return `${what} is ${refusal.size} bytes, more than the ${refusal.limit} the harness reads`;
    case "unreadable":
      return `${what} could not be read (${refusal.code})`;
    default:
      return `${what} is ${plantedAs(refusal)}, not a regular file of the harness's`;
  }
}

const MODES = {
  read: constants.O_RDONLY,
  update: constants.O_RDWR,
  append: constants.O_WRONLY | constants.O_APPEND,
} as const;

/** Never through a link; never waiting on a FIFO's other end or a terminal. */
const SAFE = constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

/**
 * Opens a harness file without following a link, and only if it is a regular file with
 * one name; null when there is none. The caller closes `fd`.
 */
export function openRegular(path: string, mode: keyof typeof MODES): OpenedFile | Refusal | null {
  let fd: number;
  try {
    fd = openSync(path, MODES[mode] | SAFE);
  } catch (error) {
    return openError(path, error);
  }
  let stats: Stats;
  try {
    stats = fstatSync(fd);
  } catch (error) {
    closeSync(fd);
    return { refused: "unreadable", code: codeOf(error) };
  }
  const refusal = notRegular(stats);
  if (refusal) {
    closeSync(fd);
    return refusal;
  }
  return { fd, size: stats.size, mtimeMs: stats.mtimeMs };
}

function openError(path: string, error: unknown): Refusal | null {
  const code = codeOf(error);
  if (code === "ENOENT") return null;
  // O_NOFOLLOW on a link: ELOOP on Linux, EMLINK on the BSDs.
  if (code === "ELOOP" || code === "EMLINK") return { refused: "link", target: linkTarget(path) };
  // A socket, or a FIFO opened for writing with no reader.
  if (code === "ENXIO") return { refused: "special", what: "a socket or a FIFO" };
  if (code === "EISDIR") return { refused: "special", what: "a folder" };
  return { refused: "unreadable", code };
}

function notRegular(stats: Stats): Refusal | null {
  if (stats.isFile()) return stats.nlink > 1 ? { refused: "hardlink", names: stats.nlink } : null;
  const what = stats.isDirectory()
    ? "a folder"
    : stats.isFIFO()
      ? "a FIFO"
      : stats.isCharacterDevice() || stats.isBlockDevice()
        ? "a device"
        : stats.isSocket()
          ? "a socket"
          : "not a regular file";
  return { refused: "special", what };
}

/** Where a link points, read from the link itself (never followed); null if unreadable. */
function linkTarget(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}

/** Fills `buffer` from `position` on; returns the bytes read (fewer at the end of the file). */
export function readFully(fd: number, buffer: Buffer, position: number): number {
  let got = 0;
  while (got < buffer.length) {
    const n = readSync(fd, buffer, got, buffer.length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/** The size and modification time of a harness file, from its own descriptor. */
export function statRegular(path: string): FileInfo | Refusal | null {
  const opened = openRegular(path, "read");
  if (opened === null || isRefusal(opened)) return opened;
  closeSync(opened.fd);
  return { size: opened.size, mtimeMs: opened.mtimeMs };
}

/** A harness file's last `max` bytes at most (all of it when smaller). */
export function readTail(path: string, max: number): FileText | Refusal | null {
  return readWith(path, (file) => Math.max(0, file.size - max));
}

/** A harness file whole, refused when it is larger than `max` bytes (nothing is read then). */
export function readWhole(path: string, max: number): FileText | Refusal | null {
  return readWith(path, (file) =>
    file.size > max ? { refused: "large", size: file.size, limit: max } : 0,
  );
}

/**
 * The first `max` bytes of a file a program could have replaced (a trial's records, an
 * agent's answer), as text; null when it is missing, a link, a FIFO or anything but a
 * regular file, so nothing outside is read and nothing blocks.
 */
export function readHead(path: string, max: number): string | null {
  const opened = openRegular(path, "read");
  if (opened === null || isRefusal(opened)) return null;
  try {
    const buffer = Buffer.alloc(Math.min(opened.size, max));
    return buffer.subarray(0, readFully(opened.fd, buffer, 0)).toString("utf8");
  } catch {
    return null;
  } finally {
    closeSync(opened.fd);
  }
}

/** Opens, then reads from the offset `from` gives to the end as the descriptor saw it. */
function readWith(
  path: string,
  from: (file: OpenedFile) => number | Refusal,
): FileText | Refusal | null {
  const opened = openRegular(path, "read");
  if (opened === null || isRefusal(opened)) return opened;
  try {
    const start = from(opened);
    if (typeof start !== "number") return start;
    // Bounded by the size fstat gave: a file growing meanwhile is not followed further.
    const buffer = Buffer.alloc(opened.size - start);
    const got = readFully(opened.fd, buffer, start);
    const text = buffer.subarray(0, got).toString("utf8");
    return { text, size: opened.size, mtimeMs: opened.mtimeMs };
  } catch (error) {
    return { refused: "unreadable", code: codeOf(error) };
  } finally {
    closeSync(opened.fd);
  }
}

/**
 * Creates `path` anew as an empty regular file the harness alone opened, and returns a
 * descriptor (the caller closes it). Whatever was there is unlinked first (unlinking a
 * link removes the link, never its target); O_EXCL with O_NOFOLLOW then refuses anything
 * put back in between. Throws when that cannot be done.
 */
export function createFresh(path: string, append = false): number {
  const flags =
    constants.O_WRONLY |
    constants.O_CREAT |
    constants.O_EXCL |
    constants.O_NOFOLLOW |
    (append ? constants.O_APPEND : 0);
  for (let attempt = 0; ; attempt++) {
    removeEntry(path);
    try {
      return openSync(path, flags, 0o666);
    } catch (error) {
      // Something recreated the name between the unlink and the open: once more, then give up.
      if (codeOf(error) !== "EEXIST" || attempt >= 2) throw error;
    }
  }
}

/** Unlinks `path` if there is something there other than a folder (a link goes, not its target). */
export function removeEntry(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if (codeOf(error) !== "ENOENT") throw error;
  }
}

/** Appends `text` to a harness file, only a regular one; false when it was not written. */
export function appendRegular(path: string, text: string): boolean {
  const opened = openRegular(path, "append");
  if (opened === null || isRefusal(opened)) return false;
  try {
    writeSync(opened.fd, text);
    return true;
  } catch {
    return false;
  } finally {
    closeSync(opened.fd);
  }
}

/**
 * Puts a regular file holding `text` where a planted link or special file was, so that
 * nothing that reads this path later (a report, a researcher's brief) goes through it.
 * A folder stays. False when it could not be replaced.
 */
export function replaceWith(path: string, text: string): boolean {
  try {
    const fd = createFresh(path);
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    return true;
  } catch {
    return false;
  }
}

export interface Planted {
  name: string;
  refusal: Refusal;
}

/** A planted entry in words: "metrics.json.12.tmp (a symbolic link to /x)". */
export function describePlanted(entry: Planted): string {
  return `${printable(entry.name)} (${plantedAs(entry.refusal)})`;
}

/**
 * The entries of a harness folder that the harness did not make and that would redirect
 * or stall what it writes or reads there later: links, hard links, devices, FIFOs and
 * sockets, each removed (unlinking never follows). Folders stay unlisted — a program may
 * keep its own outputs beside its result file — except under a name the harness writes
 * (`ownNames`), where one would make its next write fail.
 */
export function removePlanted(
  dir: string,
  ownNames: (name: string) => boolean = () => false,
): Planted[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const planted: Planted[] = [];
  for (const name of names.sort()) {
    const path = join(dir, name);
    const opened = openRegular(path, "read");
    if (opened === null) continue;
    if (!isRefusal(opened)) {
      closeSync(opened.fd);
      continue;
    }
    if (!isPlanted(opened) || (isFolder(opened) && !ownNames(name))) continue;
    planted.push({ name, refusal: opened });
    try {
      if (isFolder(opened)) rmSync(path, { recursive: true, force: true });
      else removeEntry(path);
    } catch {}
  }
  return planted;
}

function isFolder(refusal: Refusal): boolean {
  return refusal.refused === "special" && refusal.what === "a folder";
}
