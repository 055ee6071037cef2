import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { isMap, isScalar, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { TaskFileError } from "../errors.js";
import { TASK_FILE } from "../workspace/layout.js";
import { settle, taskFileSchema } from "./schema.js";
import type { Task } from "./task.js";

/** Reads and validates `autoresearch.yaml` in `dir`; every error names field, value and what is allowed. */
export function loadTask(dir: string): Task {
  const root = resolve(dir);
  const file = join(root, TASK_FILE);
  checkTaskFolder(root);
  if (!existsSync(file))
    throw new TaskFileError(
      `no ${TASK_FILE} in ${root}: create one, or start from a template with \`autoresearch init\``,
    );
  return parseTask(readFileSync(file, "utf8"), root, file);
}

/** Refuses a task folder that does not exist: a mistaken -C, not a task without runs. */
export function checkTaskFolder(root: string): void {
  if (!existsSync(root))
    throw new TaskFileError(`the folder ${root} does not exist: give -C the task's folder`);
  if (!statSync(root).isDirectory())
    throw new TaskFileError(`${root} is not a folder: give -C the task's folder`);
}

/** Validates task-file text; `file` is only used in messages. */
export function parseTask(source: string, root: string, file: string = TASK_FILE): Task {
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, prettyErrors: false });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const at = lines.linePos(yamlError.pos[0]);
    throw new TaskFileError(
      `${file}:${at.line}:${at.col}: not valid YAML: ${firstLine(yamlError.message)}`,
    );
  }
  if (!isMap(doc.contents))
    throw new TaskFileError(`${file}: must be a mapping of fields (run, editable, metric, ...)`);
  const raw: unknown = doc.toJS();
  const parsed = taskFileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((issue) => describe(issue, raw, doc, lines));
    // In the order of the file, so that the list reads top to bottom.
    problems.sort((a, b) => a.line - b.line || a.col - b.col);
    throw new TaskFileError(problems.map((p) => `${file}${p.where}: ${p.text}`).join("\n"));
  }
  return settle(parsed.data, root, file);
}

type Doc = ReturnType<typeof parseDocument>;

interface Problem {
  line: number;
  col: number;
  /** ":line:col", or "" where the file has no place for it. */
  where: string;
  text: string;
}

/** One problem per issue, or per field of an issue that names several unknown fields. */
function describe(issue: z.core.$ZodIssue, raw: unknown, doc: Doc, lines: LineCounter): Problem[] {
  if (issue.code === "unrecognized_keys") {
    // strict() words one line per unknown key, in the issue's order.
    const messages = issue.message.split("\n");
    return issue.keys.map((key, i) => {
      const path = [...issue.path, key] as (string | number)[];
      const at = position(doc, lines, path, true);
      return { ...at, text: `${formatPath(path)}: ${messages[i] ?? messages[0]}` };
    });
  }
  const path = [...issue.path] as (string | number)[];
  const at = position(doc, lines, path, false);
  const field = path.length ? formatPath(path) : "(top level)";
  const value = valueAt(raw, path);
  const got = value === undefined ? "" : `, got ${show(value)}`;
  const problem = { ...at, text: `${field}: ${issue.message}${got}` };
  if (issue.code !== "invalid_union") return [problem];
  // A union says only that no form fits; a mistyped field of the mapping form is worth
  // naming too (secondary: [{ name: a, patern: x }]).
  const unknown = issue.errors
    .flat()
    .filter((i) => i.code === "unrecognized_keys")
    .flatMap((i) => describe({ ...i, path: [...issue.path, ...i.path] }, raw, doc, lines));
  return [problem, ...unknown];
}

function position(
  doc: Doc,
  lines: LineCounter,
  path: (string | number)[],
  atKey: boolean,
): Omit<Problem, "text"> {
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return { line, col, where: `:${line}:${col}` };
  };
  if (atKey) {
    // An unknown field: point at its key rather than its value.
    const parent = path.length > 1 ? doc.getIn(path.slice(0, -1), true) : doc.contents;
    const pair = isMap(parent)
      ? parent.items.find((p) => isScalar(p.key) && p.key.value === path.at(-1))
      : undefined;
    const range = isScalar(pair?.key) ? pair.key.range : undefined;
    if (range) return at(range[0]);
  }
  // A missing field has no node; point at the closest ancestor that exists.
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth), true) as
      | { range?: [number, number, number] }
      | undefined;
    if (node?.range) return at(node.range[0]);
  }
  return { line: 0, col: 0, where: "" };
}

function valueAt(raw: unknown, path: (string | number)[]): unknown {
  let value = raw;
  for (const key of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string | number, unknown>)[key];
  }
  return value;
}

function formatPath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

function show(value: unknown): string {
  const json = JSON.stringify(value);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

function firstLine(message: string): string {
  return message.split("\n")[0] ?? message;
}
