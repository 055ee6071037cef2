/**
 * Finds the tunable constants of a source file: UPPER_CASE names assigned a number, a
 * boolean, a power of two (`2**19`) or a string with listed choices. A trailing comment
 * `mutate: off`, `mutate: 0.001..0.1` (bounds) or `mutate: relu|gelu|silu` (choices)
 * steers the mutate researcher.
 */

export type ConstantKind = "int" | "float" | "pow2" | "bool" | "choice";

export interface Constant {
  file: string;
  /** 0-based line index. */
  line: number;
  name: string;
  kind: ConstantKind;
  /** The value exactly as written. */
  raw: string;
  /** Where `raw` starts on its line. */
  column: number;
  range: [number, number] | null;
  choices: string[] | null;
}

const ASSIGNMENT =
  /^(\s*(?:export\s+)?(?:(?:const|let|var)\s+)?)([A-Z][A-Z0-9_]*)(\s*(?::\s*[\w.[\]| ]+?)?\s*=\s*)(.+?)\s*;?\s*(?:(?:#|\/\/)(.*))?$/;
const INT = /^-?\d[\d_]*$/;
const FLOAT = /^-?(?:\d[\d_]*\.\d*|\.\d+|\d[\d_]*(?:\.\d*)?[eE][+-]?\d+)$/;
const POW2 = /^2\s*\*\*\s*\d+$/;
const BOOL = /^(?:True|False|true|false)$/;
const STRING = /^(["'])([^"'\\]*)\1$/;
const HINT = /mutate:\s*(\S+)/;

function kindOf(raw: string, choices: string[] | null): ConstantKind | null {
  if (BOOL.test(raw)) return "bool";
  if (POW2.test(raw)) return "pow2";
  if (INT.test(raw)) return "int";
  if (FLOAT.test(raw)) return "float";
  if (STRING.test(raw) && choices) return "choice";
  return null;
}

export function findConstants(file: string, text: string): Constant[] {
  const found: Constant[] = [];
  const lines = text.split("\n");
  lines.forEach((line, index) => {
    const match = ASSIGNMENT.exec(line);
    if (!match) return;
    const [, lead, name, op, raw, comment] = match as unknown as [
      string,
      string,
      string,
      string,
      string,
      string?,
    ];
    const hint = comment ? HINT.exec(comment)?.[1] : undefined;
    if (hint === "off") return;
    let range: [number, number] | null = null;
    let choices: string[] | null = null;
    if (hint?.includes("..")) {
      const [lo, hi] = hint.split("..").map(Number);
      if (Number.isFinite(lo) && Number.isFinite(hi)) range = [lo!, hi!];
    } else if (hint?.includes("|")) choices = hint.split("|").filter(Boolean);
    const kind = kindOf(raw, choices);
    if (!kind) return;
    found.push({
      file,
      line: index,
      name,
      kind,
      raw,
      column: lead.length + name.length + op.length,
      range,
      choices,
    });
  });
  return found;
}
