/**
 * A parameter is a module-level assignment of a number, a boolean or a string in an
 * editable file, found by the file's own parser. `mutate` and `tune` change parameters by
 * rewriting the value's text in place, so the rest of the file stays as written.
 */

export type ParamKind = "int" | "float" | "pow2" | "bool" | "choice" | "string";

/** How values are written: Python, JavaScript/TypeScript, or a config format. */
export type Syntax = "python" | "script" | "yaml" | "json" | "toml";

export interface Param {
  file: string;
  /** The assigned name; a dotted path (`optimizer.lr`) inside YAML, JSON and TOML. */
  name: string;
  kind: ParamKind;
  /** The value exactly as written. */
  raw: string;
  /** Where `raw` starts and ends in the file's text (UTF-16 offsets). */
  start: number;
  end: number;
  syntax: Syntax;
  /** The text of a trailing comment on the same line, without its marker. */
  comment: string | null;
  /** 1-based line, for messages. */
  line: number;
}

/** An assignment's value node, before it is classified. */
export interface Found {
  name: string;
  raw: string;
  start: number;
  end: number;
  kind: ParamKind;
  comment: string | null;
}

/** The value a written literal stands for: a number, a boolean, or a string's text. */
export function paramValue(p: Pick<Param, "kind" | "raw" | "syntax">): number | boolean | string {
  switch (p.kind) {
    case "bool":
      return /^(true|True)$/.test(p.raw);
    case "pow2":
      return 2 ** Number(p.raw.split("**")[1]);
    case "int":
    case "float":
      return Number(p.raw.replace(/[\s_]/g, ""));
    default:
      return unquote(p.raw, p.syntax);
  }
}

/** A string literal's text: quotes dropped; YAML plain scalars have none. */
export function unquote(raw: string, syntax: Syntax): string {
  const q = raw[0];
  if (q === '"' || q === "'" || q === "`") {
    const body = raw.slice(1, -1);
    // Backslash escapes are rare in parameter values; the common ones are undone.
    return q === "'" && syntax === "yaml"
      ? body.replaceAll("''", "'")
      : body.replace(/\\(["'\\])/g, "$1");
  }
  return raw;
}

/** A string written like `like`: the same quotes, or plain in YAML where that is safe. */
export function quoteLike(text: string, like: string, syntax: Syntax): string {
  const q = like[0];
  if (syntax === "yaml" && q !== '"' && q !== "'" && plainYaml(text)) return text;
  // Single quotes hold no escapes in TOML and YAML: only text without quotes, backslashes
  // or control characters goes in them.
  if (q === "'" && syntax !== "json" && !/['\\\p{Cc}]/u.test(text)) return `'${text}'`;
  return JSON.stringify(text);
}

/**
 * Whether a word reads back as the same string when written without quotes, in YAML 1.2
 * and in YAML 1.1 loaders (PyYAML), which also take `on`, `off`, `yes`, `no` and `y` as
 * booleans and `null` and `~` as nothing.
 */
function plainYaml(text: string): boolean {
  return /^[A-Za-z_][\w.-]*$/.test(text) && !/^(y|n|yes|no|on|off|true|false|null)$/i.test(text);
}

/** A boolean in the file's language. */
export function writeBool(value: boolean, syntax: Syntax): string {
  if (syntax === "python") return value ? "True" : "False";
  return value ? "true" : "false";
}

/**
 * A float written in the style of `like` and readable by every loader of its syntax: YAML
 * floats always carry a point and a signed exponent, which YAML 1.1 loaders (PyYAML)
 * require; a float never turns into an integer.
 */
export function writeFloat(value: number, like: string, syntax: Syntax): string {
  const exponent =
    /[eE]/.test(like) || (value !== 0 && (Math.abs(value) < 1e-4 || Math.abs(value) >= 1e7));
  if (exponent) {
    const [mantissa, power] = value.toExponential().split("e") as [string, string];
    const sign = power.startsWith("-") ? "-" : syntax === "yaml" ? "+" : "";
    const m = syntax === "yaml" && !mantissa.includes(".") ? `${mantissa}.0` : mantissa;
    return `${m}e${sign}${power.replace(/^[+-]/, "")}`;
  }
  const text = String(value);
  return text.includes(".") ? text : `${text}.0`;
}

/** The text that writes `value` for parameter `p` in its file. */
export function writeValue(p: Param, value: number | boolean | string): string {
  switch (p.kind) {
    case "bool":
      return writeBool(Boolean(value), p.syntax);
    case "pow2": {
      const exponent = Math.round(Math.log2(Number(value)));
      return p.raw.replace(/\d+\s*$/, String(exponent));
    }
    case "int": {
      // BigInt: past 2**53 `String` writes `1e+21`, a float in Python and no TOML at all.
      const text = BigInt(Math.round(Number(value))).toString();
      // Digit groups stay if the value was written with them (`1_000_000`).
      return p.raw.includes("_") ? text.replace(/\B(?=(\d{3})+(?!\d))/g, "_") : text;
    }
    case "float":
      return writeFloat(Number(value), p.raw, p.syntax);
    default:
      return quoteLike(String(value), p.raw, p.syntax);
  }
}

/** A value for a title: numbers and booleans as written, strings without quotes. */
export function shown(p: Param, raw: string): string {
  return p.kind === "choice" || p.kind === "string" ? unquote(raw, p.syntax) : raw;
}
