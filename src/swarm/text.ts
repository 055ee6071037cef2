import { SwarmError } from "../errors.js";

// PostgreSQL's text holds no NUL, and its JSON no lone UTF-16 surrogate (a string cut in
// the middle of an emoji): either makes the whole statement fail.
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what PostgreSQL refuses.
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Free text (a title, a hypothesis, a diff) as PostgreSQL can store it: each character it
 * cannot hold becomes U+FFFD. Lossy on purpose: the host's own ledger keeps the original,
 * and an upload refused for one character would be refused on every retry.
 */
export function storable(text: string): string;
export function storable(text: string | null): string | null;
export function storable(text: string | null): string | null {
  return text === null ? null : text.replace(UNSTORABLE, "\ufffd");
}

/**
 * A name that things are matched by (a uid, a hardware class, a hash) as it is, or a
 * SwarmError naming `field`: replacing a character there could make two names one.
 */
export function exactText<T extends string | null | undefined>(field: string, value: T): T {
  if (typeof value === "string" && new RegExp(UNSTORABLE.source).test(value))
    throw new SwarmError(
      `${field} ${JSON.stringify(value)} holds a NUL byte or a lone UTF-16 surrogate, which PostgreSQL cannot store: give it without them`,
    );
  return value;
}
