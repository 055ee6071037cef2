import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, tempDir } from "../helpers.js";

const DEPCRUISE = join(ROOT, "node_modules", ".bin", "depcruise");
const CONFIG = join(ROOT, ".dependency-cruiser.cjs");

/** The dependency check on `src/` of `dir`, as `npm run deps` runs it on the project. */
function check(dir: string) {
  const r = spawnSync(DEPCRUISE, ["src", "--config", CONFIG], { cwd: dir, encoding: "utf8" });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A tree of TypeScript files, by path. */
function tree(files: Record<string, string>): string {
  const dir = tempDir("ar-layers-");
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext" } }),
  );
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe("the layers of src/", () => {
  it("hold in the project: every import points down", () => {
    const r = check(ROOT);
    expect(r.out).toContain("no dependency violations found");
    expect(r.status).toBe(0);
  });

  it("refuse an import that points up, naming the rule and the files", () => {
    const dir = tree({
      "src/cli/main.ts": "export const main = 1;\n",
      "src/metrics/parse.ts": 'import { main } from "../cli/main.js";\nexport const x = main;\n',
      "src/judge/greedy.ts": 'import { x } from "../metrics/parse.js";\nexport const y = x;\n',
    });
    const r = check(dir);
    expect(r.status).not.toBe(0);
    expect(r.out).toContain("layer-metrics: src/metrics/parse.ts → src/cli/main.ts");
    // The downward import beside it is fine.
    expect(r.out).not.toContain("src/judge/greedy.ts →");
  });

  it("refuse a report or CLI module reaching past the orchestrator's index", () => {
    const dir = tree({
      "src/orchestrator/index.ts": 'export { run } from "./run/start.js";\n',
      "src/orchestrator/run/start.ts": "export const run = 1;\n",
      "src/cli/run.ts":
        'import { run } from "../orchestrator/run/start.js";\nexport const r = run;\n',
    });
    const r = check(dir);
    expect(r.status).not.toBe(0);
    expect(r.out).toContain("orchestrator-index: src/cli/run.ts → src/orchestrator/run/start.ts");
  });
});
