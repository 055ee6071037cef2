import type * as TS from "typescript";
import type { Found, ParamKind } from "./param.js";

let compiler: Promise<typeof TS> | null = null;

/** The TypeScript compiler, loaded when a JavaScript, TypeScript or JSON file is read. */
function typescript(): Promise<typeof TS> {
  compiler ??= import("typescript").then((m) => (m.default ?? m) as typeof TS);
  return compiler;
}

/**
 * Top-level `const|let|var name = literal` declarations (exported or not) of a JavaScript
 * or TypeScript file, read with the TypeScript compiler's parser.
 */
export async function findScript(file: string, text: string): Promise<Found[]> {
  const ts = await typescript();
  const kind = /\.[cm]?tsx?$/.test(file)
    ? file.endsWith("x")
      ? ts.ScriptKind.TSX
      : ts.ScriptKind.TS
    : file.endsWith("x")
      ? ts.ScriptKind.JSX
      : ts.ScriptKind.JS;
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, kind);
  const found: Found[] = [];
  const state = counters(ts, source);
  for (const statement of source.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    const comment = trailingComment(ts, text, statement.end);
    for (const declaration of statement.declarationList.declarations) {
      const init = declaration.initializer;
      if (!ts.isIdentifier(declaration.name) || !init || state.has(declaration.name.text)) continue;
      const literal = literalKind(ts, init, source);
      if (!literal) continue;
      found.push({
        name: declaration.name.text,
        raw: init.getText(source),
        start: init.getStart(source),
        end: init.end,
        kind: literal,
        comment,
      });
    }
  }
  return found;
}

/**
 * Members of a JSON file's objects whose values are numbers, booleans or strings, as
 * dotted paths, read with the TypeScript compiler's JSON parser.
 */
export async function findJson(file: string, text: string): Promise<Found[]> {
  const ts = await typescript();
  const source = ts.parseJsonText(file, text);
  if ((source as { parseDiagnostics?: unknown[] }).parseDiagnostics?.length) return [];
  const found: Found[] = [];
  const visit = (node: TS.Expression, path: string[]) => {
    if (!ts.isObjectLiteralExpression(node)) return;
    for (const member of node.properties) {
      if (!ts.isPropertyAssignment(member)) continue;
      const key =
        ts.isStringLiteral(member.name) || ts.isIdentifier(member.name) ? member.name.text : null;
      if (key === null) continue;
      const value = member.initializer;
      const literal = literalKind(ts, value, source);
      if (literal === "pow2") continue;
      if (literal)
        found.push({
          name: [...path, key].join("."),
          raw: value.getText(source),
          start: value.getStart(source),
          end: value.end,
          kind: literal,
          comment: null,
        });
      else visit(value, [...path, key]);
    }
  };
  const root = source.statements[0]?.expression;
  if (root) visit(root, []);
  return found;
}

/**
 * Names the program assigns as it runs (`steps++`, `best = loss`): state, not settings,
 * whatever their first value.
 */
function counters(ts: typeof TS, source: TS.SourceFile): Set<string> {
  const names = new Set<string>();
  const visit = (node: TS.Node): void => {
    if (
      ts.isBinaryExpression(node) &&
      node.operatorToken.kind >= ts.SyntaxKind.FirstAssignment &&
      node.operatorToken.kind <= ts.SyntaxKind.LastAssignment &&
      ts.isIdentifier(node.left)
    )
      names.add(node.left.text);
    if (
      (ts.isPrefixUnaryExpression(node) || ts.isPostfixUnaryExpression(node)) &&
      (node.operator === ts.SyntaxKind.PlusPlusToken ||
        node.operator === ts.SyntaxKind.MinusMinusToken) &&
      ts.isIdentifier(node.operand)
    )
      names.add(node.operand.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return names;
}

function literalKind(ts: typeof TS, node: TS.Expression, source: TS.SourceFile): ParamKind | null {
  if (ts.isNumericLiteral(node)) {
    // Decimal numbers only: a hexadecimal or octal value is a bit pattern, not a setting.
    const text = node.getText(source);
    if (/^\d[\d_]*$/.test(text)) return "int";
    return /^(\d[\d_]*)?\.?\d*([eE][+-]?\d+)?$/.test(text) ? "float" : null;
  }
  if (node.kind === ts.SyntaxKind.TrueKeyword || node.kind === ts.SyntaxKind.FalseKeyword)
    return "bool";
  if (ts.isStringLiteral(node)) return "string";
  if (ts.isPrefixUnaryExpression(node) && node.operator === ts.SyntaxKind.MinusToken) {
    const inner = ts.isNumericLiteral(node.operand) ? literalKind(ts, node.operand, source) : null;
    return inner;
  }
  if (
    ts.isBinaryExpression(node) &&
    node.operatorToken.kind === ts.SyntaxKind.AsteriskAsteriskToken &&
    ts.isNumericLiteral(node.left) &&
    node.left.text === "2" &&
    ts.isNumericLiteral(node.right) &&
    /^\d+$/.test(node.right.getText(source))
  )
    return "pow2";
  return null;
}

/** A `// ...` or `/* ... *\/` comment after the statement on the same line. */
function trailingComment(ts: typeof TS, text: string, end: number): string | null {
  const range = ts.getTrailingCommentRanges(text, end)?.[0];
  if (!range) return null;
  return text
    .slice(range.pos, range.end)
    .replace(/^\/\/\s*|^\/\*\s*|\s*\*\/$/g, "")
    .trim();
}
