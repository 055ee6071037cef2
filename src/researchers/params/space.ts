import picomatch from "picomatch";
import { type Param, paramValue, shown, writeBool } from "./param.js";

/** One entry of the task file's `researcher.params`: a name or glob, and what the user knows. */
export interface ParamRule {
  name: string;
  file?: string | undefined;
  range?: [number, number] | undefined;
  log?: boolean | undefined;
  int?: boolean | undefined;
  choices?: (string | number | boolean)[] | undefined;
}

export type Value = number | boolean | string;

/** A parameter as a researcher searches it: its domain, declared or inferred. */
export interface Dimension {
  /** The parameter's name, or `file:name` where two files assign the same name. */
  key: string;
  param: Param;
  type: "float" | "int" | "choice";
  low: number;
  high: number;
  log: boolean;
  choices: Value[];
  /** The bounds or choices came from the user (a `mutate:` comment or `researcher.params`). */
  declared: boolean;
}

/** A `mutate: off`, `mutate: 0.1..0.5` or `mutate: relu|gelu` comment (spaces allowed). */
function hint(comment: string | null): {
  off?: true;
  range?: [number, number];
  choices?: string[];
} {
  const text = /mutate:\s*(.*)$/.exec(comment ?? "")?.[1]?.replace(/\s+/g, "");
  if (!text) return {};
  if (text === "off") return { off: true };
  if (text.includes("..")) {
    const [lo, hi] = text.split("..").map(Number);
    if (Number.isFinite(lo) && Number.isFinite(hi))
      return { range: [Math.min(lo!, hi!), Math.max(lo!, hi!)] };
  }
  if (text.includes("|")) return { choices: text.split("|").filter(Boolean) };
  return {};
}

const isGlob = (name: string) => /[*?[\]{}!]/.test(name);

/**
 * The dimensions to search among `params`. With `rules`, only the parameters they name; a
 * parameter named by several rules takes what each says, later rules over earlier ones.
 * Without rules, or through a glob, never one marked `mutate: off` nor a seed (changing one
 * is noise, not research); a rule naming it exactly does take it. Strings need choices.
 * Returned apart: the rules that name nothing, and what makes a named parameter
 * unsearchable, for the caller to report.
 */
export function dimensions(
  params: Param[],
  rules: ParamRule[] | undefined,
): { dimensions: Dimension[]; unmatched: string[]; problems: string[] } {
  // A name assigned twice in one file takes its last value; that is the one to change.
  const last = new Map(params.map((p) => [`${p.file}\0${p.name}`, p]));
  const all = [...last.values()];
  const files = new Map<string, Set<string>>();
  for (const p of all) files.set(p.name, (files.get(p.name) ?? new Set()).add(p.file));
  const keyOf = (p: Param) => (files.get(p.name)!.size > 1 ? `${p.file}:${p.name}` : p.name);
  const wanted = (p: Param) => !hint(p.comment).off && !/seed/i.test(p.name);
  const unmatched: string[] = [];
  const problems: string[] = [];
  const chosen = new Map<Param, ParamRule | null>();
  const named = new Set<Param>();
  if (rules?.length) {
    for (const rule of rules) {
      const name = picomatch(rule.name, { dot: true });
      const file = rule.file ? picomatch(rule.file, { dot: true }) : () => true;
      const hits = all.filter(
        (p) =>
          (name(p.name) || name(keyOf(p))) && file(p.file) && (!isGlob(rule.name) || wanted(p)),
      );
      if (!hits.length) unmatched.push(rule.file ? `${rule.file}:${rule.name}` : rule.name);
      for (const p of hits) {
        if (!isGlob(rule.name)) named.add(p);
        const { name: _, file: __, ...earlier } = chosen.get(p) ?? { name: rule.name };
        chosen.set(p, { ...earlier, ...rule });
      }
    }
  } else for (const p of all) if (wanted(p)) chosen.set(p, null);
  const found: Dimension[] = [];
  for (const [p, rule] of chosen) {
    const d = dimension(p, keyOf(p), rule);
    if (typeof d === "string") {
      if (named.has(p)) problems.push(`${keyOf(p)} ${d}`);
    } else found.push(d);
  }
  return { dimensions: found, unmatched, problems };
}

/** The dimension of one parameter, or why it has none. */
function dimension(p: Param, key: string, rule: ParamRule | null): Dimension | string {
  const h = hint(p.comment);
  const base = { key, param: p, log: false, low: 0, high: 0, choices: [] as Value[] };
  const given = rule?.choices ?? h.choices;
  if (given) {
    const choices = choicesLike(p, given);
    if (typeof choices === "string") return choices;
    return { ...base, type: "choice", choices, declared: true };
  }
  if (p.kind === "bool") {
    if (rule?.range || rule?.log || rule?.int)
      return `is a boolean: it takes only choices, not a range, a log scale or int`;
    return { ...base, type: "choice", choices: [false, true], declared: true };
  }
  if (p.kind === "string") return `is a string (${p.raw}): give it choices`;
  const range = rule?.range ?? h.range;
  const x = Number(paramValue(p));
  if (!Number.isFinite(x)) return `has a value that is not a finite number (${p.raw})`;
  if (p.kind === "pow2") {
    if (range && range[0] <= 0) return `is a power of two: its range must be above 0`;
    const e = Math.log2(x);
    const [lo, hi] = range ? range.map((r) => Math.log2(r)) : [Math.max(0, e - 3), e + 3];
    const [low, high] = [Math.ceil(lo!), Math.floor(hi!)];
    if (low >= high) return `has no two powers of two in its range`;
    return { ...base, type: "int", low, high, declared: !!range };
  }
  const integer = rule?.int ?? p.kind === "int";
  if (integer && !Number.isInteger(x))
    return `is declared int but its value ${p.raw} is not a whole number`;
  let [low, high] = range ?? inferred(x, integer);
  if (integer) [low, high] = [Math.ceil(low), Math.floor(high)];
  if (!Number.isFinite(low) || !Number.isFinite(high)) return `has no finite range: give it one`;
  if (low >= high) return `has no room to move in [${low}, ${high}]`;
  const log = rule?.log ?? (range ? false : low > 0 && high / low >= 16);
  if (log && low <= 0)
    return `cannot be searched on a log scale from ${low}: give it a range above 0`;
  return { ...base, type: integer ? "int" : "float", low, high, log, declared: !!range };
}

/**
 * Choices written in the parameter's own type: numbers for a number (whole for an integer),
 * booleans for a boolean, text for a string; or why they cannot be.
 */
function choicesLike(p: Param, given: Value[]): Value[] | string {
  if (p.kind === "string") return given.map(String);
  if (p.kind === "bool") {
    const flags = given.map((c) =>
      typeof c === "boolean"
        ? c
        : /^(true|false)$/i.test(String(c))
          ? /^true$/i.test(String(c))
          : null,
    );
    return flags.every((c) => c !== null)
      ? (flags as boolean[])
      : `is a boolean: its choices must be true and false`;
  }
  const numbers = given.map((c) => (typeof c === "boolean" ? Number.NaN : Number(c)));
  if (!numbers.every(Number.isFinite)) return `is a number (${p.raw}): its choices must be numbers`;
  if (p.kind !== "float" && !numbers.every(Number.isInteger))
    return `is an integer (${p.raw}): its choices must be whole numbers`;
  if (p.kind === "pow2" && !numbers.every((n) => n > 0 && Number.isInteger(Math.log2(n))))
    return `is a power of two (${p.raw}): its choices must be powers of two`;
  return numbers;
}

/**
 * A range around a value the user gave no bounds for: ten times either way for floats (on
 * a log scale when positive, and at most 1 for values below 1, which are mostly fractions:
 * dropout, betas, ratios); four times either way for integers; [0, 1] for a float zero.
 */
function inferred(x: number, integer: boolean): [number, number] {
  if (integer) {
    if (x > 0) return [Math.max(1, Math.floor(x / 4)), x * 4];
    if (x === 0) return [0, 4];
    return [x * 4, Math.ceil(x / 4)];
  }
  if (x > 0) return [x / 10, x < 1 ? Math.min(1, x * 10) : x * 10];
  if (x === 0) return [0, 1];
  return [x * 10, x / 10];
}

/**
 * `dims` with the inferred bounds of `base` (the same parameters in the run's first
 * commit): a study searches one space, not one that moves with every keep.
 */
export function anchored(dims: Dimension[], base: Dimension[]): Dimension[] {
  const byKey = new Map(base.map((d) => [d.key, d]));
  return dims.map((d) => {
    const b = byKey.get(d.key);
    if (d.declared || !b || b.declared || b.type !== d.type || b.param.kind !== d.param.kind)
      return d;
    return { ...d, low: b.low, high: b.high, log: b.log };
  });
}

/** `lr 0.001 [0.0001, 0.01] log`, for the run's header. */
export function describe(d: Dimension): string {
  const now = shown(d.param, d.param.raw);
  const domain =
    d.type === "choice"
      ? `{${d.choices.map((c) => (typeof c === "boolean" ? writeBool(c, d.param.syntax) : c)).join(", ")}}`
      : `[${d.param.kind === "pow2" ? `2**${d.low}, 2**${d.high}` : `${fmt(d.low)}, ${fmt(d.high)}`}]${d.log ? " log" : ""}`;
  const value = Number(paramValue(d.param));
  const outside =
    d.type !== "choice" && d.param.kind !== "pow2" && (value < d.low || value > d.high);
  return `${d.key} ${now} ${domain}${d.declared ? "" : " (inferred)"}${outside ? " (its value is outside)" : ""}`;
}

const fmt = (x: number) => String(Number(x.toPrecision(4)));
