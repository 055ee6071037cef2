import { createRequire } from "node:module";
import type { Node, Parser } from "web-tree-sitter";
import type { Found, ParamKind } from "./param.js";

let parser: Promise<Parser> | null = null;

/** The Python grammar, loaded once per process (a WebAssembly module of a few MB). */
function pythonParser(): Promise<Parser> {
  parser ??= (async () => {
    const { Parser, Language } = await import("web-tree-sitter");
    await Parser.init();
    const require = createRequire(import.meta.url);
    const language = await Language.load(
      require.resolve("tree-sitter-python/tree-sitter-python.wasm"),
    );
    const p = new Parser();
    p.setLanguage(language);
    return p;
  })();
  return parser;
}

/**
 * Module-level `name = literal` and `name: type = literal` statements of a Python file,
 * read with the tree-sitter Python grammar. Assignments inside functions, classes and
 * blocks are not parameters; neither are tuples, f-strings or expressions.
 */
export async function findPython(text: string): Promise<Found[]> {
  const tree = (await pythonParser()).parse(text);
  if (!tree) return [];
  try {
    const found: Found[] = [];
    const state = counters(tree.rootNode);
    const top = tree.rootNode.namedChildren.filter((n): n is Node => n !== null);
    top.forEach((statement, i) => {
      if (statement.type !== "expression_statement" || statement.namedChildCount !== 1) return;
      const assignment = statement.firstNamedChild;
      if (assignment?.type !== "assignment") return;
      const left = assignment.childForFieldName("left");
      const right = assignment.childForFieldName("right");
      if (left?.type !== "identifier" || !right || state.has(left.text)) return;
      const kind = literalKind(right);
      if (!kind) return;
      const next = top[i + 1];
      const comment =
        next?.type === "comment" && next.startPosition.row === statement.endPosition.row
          ? next.text.replace(/^#\s*/, "")
          : null;
      found.push({
        name: left.text,
        raw: right.text,
        start: right.startIndex,
        end: right.endIndex,
        kind,
        comment,
      });
    });
    return found;
  } finally {
    tree.delete();
  }
}

/**
 * Names the program changes as it runs (`steps += 1`, `global best`): state, not
 * settings, whatever their first value.
 */
function counters(root: Node): Set<string> {
  const names = new Set<string>();
  for (const node of root.descendantsOfType(["augmented_assignment", "global_statement"])) {
    if (!node) continue;
    if (node.type === "augmented_assignment") {
      const left = node.childForFieldName("left");
      if (left?.type === "identifier") names.add(left.text);
    } else for (const name of node.namedChildren) if (name) names.add(name.text);
  }
  return names;
}

function literalKind(node: Node): ParamKind | null {
  switch (node.type) {
    case "integer":
      return /^\d[\d_]*$/.test(node.text) ? "int" : null;
    case "float":
      return node.text.endsWith("j") ? null : "float";
    case "true":
    case "false":
      return "bool";
    case "unary_operator": {
      // A minus before a number, nothing more (not `--3`).
      const operand = node.childForFieldName("argument");
      const sign = node.childForFieldName("operator")?.text;
      if (sign !== "-" || (operand?.type !== "integer" && operand?.type !== "float")) return null;
      return literalKind(operand);
    }
    case "binary_operator": {
      const left = node.childForFieldName("left");
      const right = node.childForFieldName("right");
      const op = node.childForFieldName("operator")?.text;
      return op === "**" && left?.text === "2" && right?.type === "integer" ? "pow2" : null;
    }
    case "string": {
      // Plain quotes only: no prefix (f, b, r), no interpolation, no triple quotes.
      const start = node.firstChild;
      if (start?.type !== "string_start" || !/^["']$/.test(start.text)) return null;
      return node.descendantsOfType(["interpolation", "escape_sequence"]).length === 0
        ? "string"
        : null;
    }
    default:
      return null;
  }
}
