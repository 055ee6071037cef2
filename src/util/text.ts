/**
 * What a researcher writes ends up in the ledger, commit messages, results.tsv, reports,
 * pages and the terminal: bounded, and without control characters that could rewrite a
 * terminal (ESC, BEL and the like).
 */

// C0 controls but tab and newline, DEL, and C1 controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/** At most `max` characters, saying so when cut. */
export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** One line of printable text: a title. */
export function oneLine(text: string, max = 200): string {
  return clip(text.replace(CONTROL, " ").replace(/\s+/g, " ").trim(), max);
}

/** Printable text that may span lines: a hypothesis, a reason. */
export function printable(text: string, max = 4000): string {
  return clip(text.replace(/\r\n?/g, "\n").replace(CONTROL, ""), max);
}

/** A few names of a list that may be long (a data folder). */
export function listSome(names: string[], most = 5): string {
  const more = names.length > most ? `, and ${names.length - most} more` : "";
  return names.slice(0, most).join(", ") + more;
}

/** A word as the shell reads it back: a path for commands that take no pathspec (mv, -C). */
export function shellWord(word: string): string {
  return /^[\w./@%+=,-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}
