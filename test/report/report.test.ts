import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, tempDir } from "../helpers.js";
import { externalReferences, pngSize } from "./checks.js";
import { fixtureLedger, HISTORY } from "./fixture.js";

const XSS = `<script>window.pwned=1</script><img src=x onerror="window.pwned=2">`;

describe("autoresearch report", () => {
  it("writes progress.png, progress.svg and one self-contained report.html", async () => {
    const root = tempDir();
    const trials = [
      ...HISTORY,
      {
        title: XSS,
        verdict: "keep" as const,
        metric: 0.8,
        diff: `--- a\n+++ b\n@@ -1 +1 @@\n-x = "</pre><script>alert(1)</script>"\n+x = 1\n`,
      },
    ];
    fixtureLedger(root, trials).ledger.close();
    const result = await runCli(["report", "-C", root]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const dir = join(root, ".autoresearch/runs/nov27");
    for (const name of ["report.html", "progress.png", "progress.svg"]) {
      expect(existsSync(join(dir, name))).toBe(true);
      expect(result.stdout).toContain(join(dir, name));
    }
    const { width, height } = pngSize(join(dir, "progress.png"));
    expect(width).toBeGreaterThanOrEqual(1200);
    expect(width).toBeLessThanOrEqual(4000);
    expect(height).toBeGreaterThanOrEqual(600);
    expect(height).toBeLessThan(width);

    const svg = readFileSync(join(dir, "progress.svg"), "utf8");
    expect(svg).toContain("6 experiments, 3 kept improvements");
    expect(svg).not.toContain("<script>window");

    const html = readFileSync(join(dir, "report.html"), "utf8");
    expect(externalReferences(html)).toEqual([]);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).toContain("6 experiments, 3 kept improvements");
    // The summary, the ranked improvements with their diffs, the slot timeline.
    expect(html).toContain("best val_bpb");
    expect(html).toMatch(/keep rate 50\.0%/);
    expect(html).toMatch(/crash rate 16\.7%/);
    expect(html).toContain('<span class="add">+LR = 0.02</span>');
    expect(html).toContain('<span class="del">-LR = 0.01</span>');
    expect(html).toContain("slots over time");
    const ranked = [
      ...html.matchAll(/<tr><td class="num">(\d+)<\/td><td class="num">#(\d+)<\/td>/g),
    ];
    expect(ranked.map((m) => m[2])).toEqual(["1", "5", "6"]);
    // Titles and diffs are text, never markup.
    expect(html).toContain("&lt;script&gt;window.pwned=1&lt;/script&gt;&lt;img src=x onerror=");
    expect(html).toContain("&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(html).not.toContain("<img src=x");
    // Sections without data are left out.
    expect(html).not.toContain("Held-out");
    expect(html).not.toContain("LLM cost");
  });

  it("writes where --out says, for the run --tag names, and names the runs there are", async () => {
    const root = tempDir();
    fixtureLedger(root).ledger.close();
    const out = join(tempDir(), "out");
    const result = await runCli(["report", "-C", root, "--tag", "nov27", "--out", out]);
    expect(result.code).toBe(0);
    expect(existsSync(join(out, "report.html"))).toBe(true);
    const missing = await runCli(["report", "-C", root, "--tag", "dec1"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--tag: no run "dec1"');
    expect(missing.stderr).toContain("runs: nov27");
    const nothing = await runCli(["report", "-C", tempDir()]);
    expect(nothing.code).toBe(5);
    expect(nothing.stderr).toContain("no ledger in");
  });

  it("draws a run that only has a baseline, or whose baseline crashed", async () => {
    const root = tempDir();
    fixtureLedger(root, [{ title: "baseline", verdict: "keep", metric: 2 }]).ledger.close();
    const one = await runCli(["report", "-C", root]);
    expect(one.code).toBe(0);
    expect(readFileSync(join(root, ".autoresearch/runs/nov27/progress.svg"), "utf8")).toContain(
      "0 experiments, 0 kept improvements",
    );
    const crashed = tempDir();
    fixtureLedger(crashed, [{ title: "baseline", verdict: "crash", metric: null }]).ledger.close();
    const two = await runCli(["report", "-C", crashed]);
    expect(two.stderr).toBe("");
    expect(two.code).toBe(0);
    pngSize(join(crashed, ".autoresearch/runs/nov27/progress.png"));
  });
});
