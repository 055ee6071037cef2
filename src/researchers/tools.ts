import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  writeFileSync,
} from "node:fs";
import { dirname, isAbsolute, join, normalize, relative, sep } from "node:path";
import { type ToolSet, tool } from "ai";
import { z } from "zod";
import { readHead } from "../util/safe-file.js";
import { gitRaw } from "../workspace/git.js";
import { paths, TRIAL_FILES } from "../workspace/layout.js";
import { EditScope } from "../workspace/scope.js";
import type { ProposalRequest } from "./researcher.js";

const READ_LINES = 2000;
const READ_BYTES = 200_000;
const WRITE_BYTES = 1_000_000;
const DIFF_BYTES = 20_000;

/** What a tool call returns to the model; errors go back to it as tool errors, never crash. */
export interface ToolOutcome {
  ok: boolean;
  text: string;
}

/** The tools a model researcher works with, as the AI SDK describes them to the provider. */
export const TOOL_DEFINITIONS: ToolSet = {
  list_files: tool({
    description: "List the files of the task, marking the ones you may edit.",
    inputSchema: z.object({}),
  }),
  read_file: tool({
    description: `Read a file of the task. Long files come in pages of ${READ_LINES} lines: give the 1-based first line as offset.`,
    inputSchema: z.object({ path: z.string(), offset: z.number().int().min(1).optional() }),
  }),
  edit_file: tool({
    description:
      "Replace one exact occurrence of old_text with new_text in an editable file. old_text must match the file exactly (whitespace included) and occur once.",
    inputSchema: z.object({ path: z.string(), old_text: z.string(), new_text: z.string() }),
  }),
  write_file: tool({
    description:
      "Write the whole content of an editable file (creating it if it is new and editable).",
    inputSchema: z.object({ path: z.string(), content: z.string() }),
  }),
  show_trial: tool({
    description:
      "Show an earlier trial of this run: its verdict, metrics, diff and the end of its log.",
    inputSchema: z.object({ n: z.number().int().min(0) }),
  }),
  finish: tool({
    description:
      "End your turn once your edit is made: a short title of what changed (under 80 characters) and the hypothesis it tests.",
    inputSchema: z.object({ title: z.string(), hypothesis: z.string() }),
  }),
};

/**
 * The tools, executed against the trial's worktree: reads anywhere inside it, writes
 * only to editable files, never through a link or outside the worktree.
 */
export class WorkspaceTools {
  readonly edited = new Set<string>();
  finished: { title: string; hypothesis: string } | null = null;
  private readonly scope: EditScope;

  constructor(private readonly request: ProposalRequest) {
    this.scope = new EditScope(request.task);
  }

  async run(name: string, input: unknown): Promise<ToolOutcome> {
    const args = (input ?? {}) as Record<string, unknown>;
    try {
      switch (name) {
        case "list_files":
          return await this.listFiles();
        case "read_file":
          return this.readFile(
            String(args.path),
            typeof args.offset === "number" ? args.offset : 1,
          );
        case "edit_file":
          return this.editFile(String(args.path), String(args.old_text), String(args.new_text));
        case "write_file":
          return this.writeFile(String(args.path), String(args.content));
        case "show_trial":
          return this.showTrial(Number(args.n));
        case "finish":
          return this.finish(String(args.title ?? ""), String(args.hypothesis ?? ""));
        default:
          return fail(`there is no tool named ${name}`);
      }
    } catch (error) {
      return fail((error as Error).message);
    }
  }

  private async listFiles(): Promise<ToolOutcome> {
    const out = (
      await gitRaw(this.request.worktree, [
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
      ])
    ).stdout;
    const files = [...new Set(out.split("\0").filter(Boolean))].sort();
    const lines = files
      .slice(0, 2000)
      .map((f) => (this.scope.isEditable(f) ? `${f}  (editable)` : f));
    if (files.length > 2000) lines.push(`... and ${files.length - 2000} more`);
    return ok(lines.join("\n"));
  }

  private readFile(path: string, offset: number): ToolOutcome {
    const file = this.inside(path);
    if (!existsSync(file)) return fail(`${path} does not exist`);
    const content = readFileSync(file);
    if (content.includes(0)) return fail(`${path} is a binary file (${content.length} bytes)`);
    const lines = content.toString("utf8").split("\n");
    const start = offset - 1;
    let page = lines.slice(start, start + READ_LINES).join("\n");
    if (page.length > READ_BYTES) page = page.slice(0, READ_BYTES);
    const end = Math.min(lines.length, start + READ_LINES);
    const header =
      lines.length > READ_LINES ? `[${path}: lines ${offset}-${end} of ${lines.length}]\n` : "";
    return ok(header + page);
  }

  private editFile(path: string, oldText: string, newText: string): ToolOutcome {
    const file = this.writable(path);
    if (!existsSync(file))
      return fail(`${path} does not exist; use write_file to create an editable file`);
    const content = readFileSync(file, "utf8");
    if (oldText === "") return fail("old_text is empty; give the exact text to replace");
    const count = content.split(oldText).length - 1;
    if (count === 0)
      return fail(`old_text was not found in ${path}; read the file and copy the text exactly`);
    if (count > 1)
      return fail(
        `old_text occurs ${count} times in ${path}; include more surrounding text so it occurs once`,
      );
    writeFileSync(
      file,
      content.replace(oldText, () => newText),
    );
    this.edited.add(normalize(path));
    return ok(`edited ${path}`);
  }

  private writeFile(path: string, content: string): ToolOutcome {
    const file = this.writable(path);
    if (Buffer.byteLength(content) > WRITE_BYTES)
      return fail(`content is larger than ${WRITE_BYTES} bytes`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
    this.edited.add(normalize(path));
    return ok(`wrote ${path} (${Buffer.byteLength(content)} bytes)`);
  }

  private showTrial(n: number): ToolOutcome {
    const trial = this.request.history.find((t) => t.n === n);
    if (!trial) return fail(`no finished trial #${n} in this run`);
    const dir = paths.trial(this.request.task.root, this.request.tag, n);
    const read = (name: string, limit: number) => {
      const text = readHead(join(dir, name), limit + 1);
      if (text === null) return null;
      return text.length > limit ? `${text.slice(0, limit)}\n[... cut at ${limit} bytes]` : text;
    };
    const log = read(TRIAL_FILES.log, 1_000_000);
    const parts = [
      `#${n} ${trial.title ?? ""}`,
      `verdict: ${trial.verdict}${trial.reason ? ` (${trial.reason})` : ""}`,
      `hypothesis: ${trial.hypothesis ?? ""}`,
      `metrics: ${JSON.stringify(trial.metrics)}`,
      `diff:\n${read(TRIAL_FILES.diff, DIFF_BYTES) ?? "(none: the unchanged code)"}`,
      `end of log:\n${log ? log.trimEnd().split("\n").slice(-40).join("\n") : "(no log)"}`,
    ];
    return ok(parts.join("\n"));
  }

  private finish(title: string, hypothesis: string): ToolOutcome {
    if (this.edited.size === 0)
      return fail("no file was edited yet: make your change first, then call finish");
    if (!title.trim()) return fail("the title is empty");
    this.finished = { title: title.trim().slice(0, 200), hypothesis: hypothesis.trim() };
    return ok("the trial will now run");
  }

  /** The absolute path of `path`, refusing anything that leads outside the worktree. */
  private inside(path: string): string {
    if (!path || isAbsolute(path))
      throw new Error(`${path || "(empty)"}: give a path relative to the task folder`);
    const root = realpathSync(this.request.worktree);
    const file = join(root, normalize(path));
    const rel = relative(root, file);
    if (rel.startsWith("..") || rel.split(sep).includes(".git"))
      throw new Error(`${path} is outside the task`);
    // Follow existing parts: a link inside the worktree may point anywhere.
    let probe = file;
    while (!existsSync(probe)) probe = dirname(probe);
    if (relative(root, realpathSync(probe)).startsWith(".."))
      throw new Error(`${path} leads outside the task`);
    return file;
  }

  private writable(path: string): string {
    const file = this.inside(path);
    const why = this.scope.refusal(
      relative(realpathSync(this.request.worktree), file).split(sep).join("/"),
    );
    if (why)
      throw new Error(
        `${path} may not be changed (${why}); editable files: ${this.request.task.editable.join(", ")}`,
      );
    if (existsSync(file) && lstatSync(file).isSymbolicLink())
      throw new Error(`${path} is a symbolic link`);
    return file;
  }
}

const ok = (text: string): ToolOutcome => ({ ok: true, text });
const fail = (text: string): ToolOutcome => ({ ok: false, text });
