import type { AST } from "toml-eslint-parser";
import { isMap, isScalar, parseDocument, type Scalar } from "yaml";
import type { Found } from "./param.js";

/** Numbers, booleans and strings of a YAML file's mappings, as dotted paths (`optimizer.lr`). */
export function findYaml(text: string): Found[] {
  const doc = parseDocument(text, { keepSourceTokens: false });
  if (doc.errors.length) return [];
  const found: Found[] = [];
  const visit = (node: unknown, path: string[]) => {
    if (!isMap(node)) return;
    for (const pair of node.items) {
      if (!isScalar(pair.key) || pair.key.value === null) continue;
      const key = String(pair.key.value);
      if (isScalar(pair.value)) {
        const item = scalar(text, pair.value, [...path, key]);
        if (item) found.push(item);
      } else visit(pair.value, [...path, key]);
    }
  };
  visit(doc.contents, []);
  return found;
}

function scalar(text: string, node: Scalar, path: string[]): Found | null {
  const [start, end] = node.range ?? [];
  if (start === undefined || end === undefined || node.anchor || node.tag) return null;
  const raw = text.slice(start, end);
  const value = node.value;
  const kind =
    typeof value === "boolean"
      ? "bool"
      : typeof value === "number"
        ? /^[-+]?\d+$/.test(raw)
          ? "int"
          : /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)
            ? "float"
            : null
        : typeof value === "string" && (node.type === "PLAIN" || node.type?.startsWith("QUOTE"))
          ? "string"
          : null;
  if (!kind) return null;
  return { name: path.join("."), raw, start, end, kind, comment: lineComment(text, end, "#") };
}

/**
 * Numbers, booleans and strings of a TOML file's tables, as dotted paths (`[optim]` then
 * `lr = 1e-3` is `optim.lr`), read with a TOML parser. Arrays of tables are left out.
 */
export async function findToml(text: string): Promise<Found[]> {
  const { parseTOML } = await import("toml-eslint-parser");
  let program: AST.TOMLProgram;
  try {
    program = parseTOML(text);
  } catch {
    return [];
  }
  const found: Found[] = [];
  const comments = new Map(program.comments.map((c) => [c.loc.start.line, c.value.trim()]));
  const pairs = (body: AST.TOMLKeyValue[], path: (string | number)[]) => {
    for (const pair of body) {
      const key = [
        ...path,
        ...pair.key.keys.map((k) => (k.type === "TOMLBare" ? k.name : k.value)),
      ];
      const value = pair.value;
      if (value.type === "TOMLInlineTable") {
        pairs(value.body, key);
        continue;
      }
      if (value.type !== "TOMLValue") continue;
      const kind =
        value.kind === "integer"
          ? /^[-+]?\d[\d_]*$/.test(value.number)
            ? "int"
            : null
          : value.kind === "float"
            ? /^[-+]?\d/.test(value.number)
              ? "float"
              : null
            : value.kind === "boolean"
              ? "bool"
              : value.kind === "string" && !value.multiline
                ? "string"
                : null;
      if (!kind) continue;
      const [start, end] = value.range;
      found.push({
        name: key.join("."),
        raw: text.slice(start, end),
        start,
        end,
        kind,
        comment: comments.get(value.loc.end.line) ?? null,
      });
    }
  };
  for (const entry of program.body[0].body) {
    if (entry.type === "TOMLKeyValue") pairs([entry], []);
    else if (entry.kind === "standard") pairs(entry.body, entry.resolvedKey);
  }
  return found;
}

/** A comment that follows a YAML value on its line (after whitespace and the marker). */
function lineComment(text: string, from: number, marker: string): string | null {
  const lineEnd = text.indexOf("\n", from);
  const rest = text.slice(from, lineEnd === -1 ? undefined : lineEnd);
  const at = rest.indexOf(marker);
  if (at === -1 || rest.slice(0, at).trim() !== "") return null;
  return rest.slice(at + marker.length).trim();
}
