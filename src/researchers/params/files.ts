import { lstatSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { trackedFiles } from "../../workspace/repo.js";
import { type EditRules, EditScope } from "../../workspace/scope.js";
import type { ProposalRequest, ProposalResult } from "../researcher.js";
import { findParams, rewrite, syntaxOf } from "./find.js";
import type { Param } from "./param.js";
import { writeValue } from "./param.js";
import type { Dimension, Value } from "./space.js";

const MAX_FILE_BYTES = 1_000_000;
/** Manifests and lockfiles: versions and tool flags, not settings of an experiment. */
const NOT_SETTINGS =
  /(^|\/)(package(-lock)?\.json|npm-shrinkwrap\.json|pnpm-lock\.yaml|composer\.json|tsconfig[^/]*\.json|pyproject\.toml|Cargo\.toml)$/;
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The parameters of the editable files of a checkout, in file order. */
export async function editableParams(dir: string, rules: EditRules): Promise<Param[]> {
  const scope = new EditScope(rules);
  const params: Param[] = [];
  for (const file of await trackedFiles(dir)) {
    if (!scope.isEditable(file) || !syntaxOf(file) || NOT_SETTINGS.test(file)) continue;
    const buffer = regularFile(join(dir, file));
    if (!buffer || buffer.length > MAX_FILE_BYTES || buffer.includes(0)) continue;
    // Text that is not UTF-8 would be written back changed: such a file is left alone.
    let text: string;
    try {
      text = UTF8.decode(buffer);
    } catch {
      continue;
    }
    params.push(...(await findParams(file, text)));
  }
  return params;
}

/**
 * The bytes of a regular file, or null for a link (it may point outside the repository,
 * where no edit belongs), a folder, or a file that is not there.
 */
function regularFile(path: string): Buffer | null {
  try {
    return lstatSync(path).isFile() ? readFileSync(path) : null;
  } catch {
    return null;
  }
}

/** One parameter's change: the text written before and after. */
export interface Edit {
  dimension: Dimension;
  value: Value;
  raw: string;
}

export const edit = (dimension: Dimension, value: Value): Edit => ({
  dimension,
  value,
  raw: writeValue(dimension.param, value),
});

/** Writes the edits into the checkout at `dir`, each file once. */
export function applyEdits(dir: string, edits: Edit[]): void {
  const byFile = new Map<string, Edit[]>();
  for (const e of edits)
    byFile.set(e.dimension.param.file, [...(byFile.get(e.dimension.param.file) ?? []), e]);
  for (const [file, fileEdits] of byFile) {
    const path = join(dir, file);
    // Never through a link: parameters are only found in regular files.
    if (!lstatSync(path).isFile()) throw new Error(`${file} is no longer a regular file`);
    const text = readFileSync(path, "utf8");
    writeFileSync(
      path,
      rewrite(
        text,
        fileEdits.map((e) => ({ param: e.dimension.param, raw: e.raw })),
      ),
    );
  }
}

/**
 * `depth 8 → 6; lr 0.001 → 0.0003`: what a proposal changed, by name. In the names' order,
 * whatever order the edits were picked in: the title is how a change already tried on a
 * parent is known, and the same two edits picked the other way round are the same change.
 */
export const editsTitle = (edits: Edit[]) =>
  edits
    .map((e) => `${e.dimension.key} ${e.dimension.param.raw} → ${e.raw}`)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .join("; ");

/** What the ledger keeps of the edits, enough to apply them again on a newer incumbent. */
export const editsDetail = (edits: Edit[]) =>
  edits.map((e) => ({
    file: e.dimension.param.file,
    name: e.dimension.param.name,
    from: e.dimension.param.raw,
    to: e.raw,
  }));

/**
 * An earlier proposal's edits (`editsDetail`) found again by file and name among the
 * parameters of a newer incumbent; those already in place are left out.
 */
export function editsAgain(detail: unknown, dims: Dimension[]): Edit[] {
  const earlier =
    (detail as { edits?: { file?: string; name: string; to: string }[] } | null)?.edits ?? [];
  const edits: Edit[] = [];
  for (const e of earlier) {
    const d = dims.find((x) => x.param.name === e.name && (!e.file || x.param.file === e.file));
    if (d && d.param.raw !== e.to) edits.push({ dimension: d, value: e.to, raw: e.to });
  }
  return edits;
}

/** Applies an earlier proposal's edits again, by parameter name, on a newer incumbent. */
export function reapplyEdits(request: ProposalRequest, dims: Dimension[]): ProposalResult {
  const reconcile = request.reconcile!;
  const edits = editsAgain(reconcile.detail, dims);
  if (edits.length === 0)
    return { ok: false, reason: `the change of #${reconcile.n} is already in the incumbent` };
  applyEdits(request.worktree, edits);
  return {
    ok: true,
    title: editsTitle(edits),
    hypothesis: reconcile.hypothesis,
    detail: { edits: editsDetail(edits) },
  };
}
