import { findToml, findYaml } from "./config.js";
import type { Found, Param, Syntax } from "./param.js";
import { findPython } from "./python.js";
import { findJson, findScript } from "./script.js";

/** The syntax of a file by its name, or null for files no parser here reads. */
export function syntaxOf(file: string): Syntax | null {
  if (/\.pyi?$/.test(file)) return "python";
  if (/\.[cm]?[jt]sx?$/.test(file)) return "script";
  if (/\.ya?ml$/.test(file)) return "yaml";
  if (/\.json$/.test(file)) return "json";
  if (/\.toml$/.test(file)) return "toml";
  return null;
}

/**
 * The parameters of one file: module-level assignments of numbers, booleans and strings
 * in Python and JavaScript/TypeScript, and the scalar values of YAML, JSON and TOML files.
 * A file that does not parse has none.
 */
export async function findParams(file: string, text: string): Promise<Param[]> {
  const syntax = syntaxOf(file);
  if (!syntax) return [];
  let found: Found[];
  switch (syntax) {
    case "python":
      found = await findPython(text);
      break;
    case "script":
      found = await findScript(file, text);
      break;
    case "json":
      found = await findJson(file, text);
      break;
    case "yaml":
      found = findYaml(text);
      break;
    case "toml":
      found = await findToml(text);
      break;
  }
  const lineStarts = [0];
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) lineStarts.push(i + 1);
  const lineOf = (offset: number) => {
    let line = 0;
    while (line + 1 < lineStarts.length && lineStarts[line + 1]! <= offset) line++;
    return line + 1;
  };
  return found.map((f) => ({ ...f, file, syntax, line: lineOf(f.start) }));
}

/** `text` with each parameter's value replaced; the parameters must be of this text. */
export function rewrite(text: string, edits: { param: Param; raw: string }[]): string {
  let out = text;
  for (const { param, raw } of [...edits].sort((a, b) => b.param.start - a.param.start)) {
    if (out.slice(param.start, param.end) !== param.raw)
      throw new Error(`${param.file}: ${param.name} is no longer ${param.raw}`);
    out = out.slice(0, param.start) + raw + out.slice(param.end);
  }
  return out;
}
