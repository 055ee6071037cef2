import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { Ledger } from "../../src/ledger/ledger.js";
import { promotions } from "../../src/ledger/promotions.js";
import { type Dashboard, startDashboard } from "../../src/report/dashboard/server.js";
import { CLI, runCli, tempDir, waitFor } from "../helpers.js";
import { addTrial, fixtureLedger, HISTORY } from "../report/fixture.js";
import { events, get, unpack } from "./http.js";

const open: Dashboard[] = [];
afterEach(async () => {
  for (const d of open.splice(0)) await d.close();
});

async function serve(root: string, options: { host?: string; token?: string } = {}) {
  const dashboard = await startDashboard({ root, port: 0, pollMs: 100, ...options });
  open.push(dashboard);
  return dashboard;
}

function ledgerRoot(): string {
  const root = tempDir();
  fixtureLedger(root).ledger.close();
  return root;
}

/** A file's content hash; null when it is absent or empty (a reader may create an empty WAL). */
function hash(file: string): string | null {
  const content = existsSync(file) ? readFileSync(file) : null;
  return content?.length ? createHash("sha256").update(content).digest("hex") : null;
}

describe("autoresearch serve", () => {
  it("prints its URL, serves until SIGTERM, then exits cleanly", async () => {
    const root = ledgerRoot();
    const child = spawn(process.execPath, [CLI, "serve", "-C", root, "--port", "0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const port = Number(
      (
        await waitFor(
          () => /dashboard: http:\/\/127\.0\.0\.1:(\d+)\//.exec(stdout),
          15_000,
          "the URL",
        )
      )[1],
    );
    const page = await get(port, "/");
    expect(page.status).toBe(200);
    expect(page.body).toContain('href="/runs/nov27"');
    const exit = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    child.kill("SIGTERM");
    expect(await exit).toBe(0);
    expect(stderr).toBe("");
  });
});

describe("the dashboard server", () => {
  it("requires a token on a non-loopback address and accepts it as header, once in the URL, then as a cookie", async () => {
    const root = ledgerRoot();
    await expect(startDashboard({ root, host: "0.0.0.0", port: 0 })).rejects.toThrow(UsageError);
    const refused = await runCli(["serve", "-C", root, "--host", "0.0.0.0", "--port", "0"], {
      env: { AUTORESEARCH_TOKEN: "" },
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("--token: required with --host 0.0.0.0");

    const d = await serve(root, { host: "0.0.0.0", token: "s3cret" });
    expect(d.url).toMatch(/\?token=s3cret$/);
    for (const path of ["/", "/runs/nov27", "/api/runs/nov27/trials", "/runs/nov27/progress.svg"])
      expect((await get(d.port, path)).status).toBe(401);
    expect((await get(d.port, "/?token=wrong")).status).toBe(401);
    expect((await get(d.port, "/", { Authorization: "Bearer wrong" })).status).toBe(401);
    expect((await get(d.port, "/", { Cookie: `autoresearch_token_${d.port}=wrong` })).status).toBe(
      401,
    );

    expect((await get(d.port, "/", { Authorization: "Bearer s3cret" })).status).toBe(200);
    const exchange = await get(d.port, "/runs/nov27?token=s3cret");
    expect(exchange.status).toBe(303);
    expect(exchange.headers.location).toBe("/runs/nov27");
    const cookie = String(exchange.headers["set-cookie"]).split(";")[0]!;
    expect(exchange.headers["set-cookie"]?.[0]).toMatch(/HttpOnly; SameSite=Strict/);
    const page = await get(d.port, "/runs/nov27", { Cookie: cookie });
    expect(page.status).toBe(200);
    expect(page.body).toContain("<h1>Run nov27");
    // The token never sends the browser to another site.
    expect((await get(d.port, "//evil.example/?token=s3cret")).status).toBe(404);
  });

  it("on loopback without a token, answers only requests addressed to this machine", async () => {
    const d = await serve(ledgerRoot());
    expect((await get(d.port, "/")).status).toBe(200);
    expect((await get(d.port, "/", { Host: `localhost:${d.port}` })).status).toBe(200);
    const rebound = await get(d.port, "/", { Host: "attacker.example" });
    expect(rebound.status).toBe(403);
  });

  it("rejects path traversal in every parameter, and anything but GET", async () => {
    const d = await serve(ledgerRoot());
    for (const path of [
      "/runs/..%2F..%2Fetc%2Fpasswd",
      "/runs/../../etc/passwd",
      "/runs/%2e%2e/progress.svg",
      "/runs/nov27/trials/..%2F1",
      "/runs/nov27/trials/1%00",
      "/static/..%2F..%2Fpackage.json",
      "/static/../../package.json",
      "/api/runs/..%5C..%5Cledger/trials",
      "/runs/nov27/../../../.autoresearch/ledger.db",
      "/runs/%ZZ",
    ]) {
      const reply = await get(d.port, path);
      expect([path, reply.status]).toEqual([path, 400]);
      expect(reply.body).not.toContain("root:");
    }
    expect((await get(d.port, "/runs/nov27/trials/abc")).status).toBe(400);
    expect((await get(d.port, "/runs/nov27/trials/99")).status).toBe(404);
    expect((await get(d.port, "/runs/dec1")).status).toBe(404);
    expect((await get(d.port, "/static/other.js")).status).toBe(404);
    expect((await get(d.port, "/", {}, "POST")).status).toBe(405);
    expect((await get(d.port, "/", {}, "DELETE")).status).toBe(405);
  });

  it("sends a restrictive Content-Security-Policy and escapes everything from the ledger", async () => {
    const root = tempDir();
    const evil = `<script>alert(1)</script><img src=x onerror="alert(2)">`;
    const { ledger, run } = fixtureLedger(root, [
      ...HISTORY,
      {
        title: evil,
        hypothesis: `"><script>alert(3)</script>`,
        verdict: "discard",
        metric: 0.99,
        diff: `--- a\n+++ b\n@@ -1 +1 @@\n-a = "</pre><script>alert(4)</script>"\n+a = 1\n`,
        logTail: "</pre><script>alert(5)</script>",
      },
    ]);
    // A promotion's table is on the run page, in words, its titles escaped too.
    const id = promotions.create(ledger, {
      runId: run.id,
      stage: "large",
      incumbentN: 5,
      incumbentCommit: "c5",
      seeds: 2,
    });
    promotions.finish(ledger, id, "done", null, {
      metric: "val_bpb",
      stage: "large",
      seeds: 2,
      baseline: 0.17,
      incumbent: 0.15,
      stacked: 0.02,
      sum: 0.02,
      additive: true,
      rows: [
        { n: 6, title: evil, found: 0.01, atStage: 0.012, transfers: true, isolable: true },
        { n: 2, title: "WD down", found: 0.005, atStage: null, transfers: null, isolable: false },
      ],
    });
    ledger.close();
    const d = await serve(root);
    const runPage = (await get(d.port, "/runs/nov27")).body;
    expect(runPage).toContain("Transfer up the scale ladder");
    expect(runPage).toMatch(/#6 .*&lt;script&gt;alert\(1\).*<td>yes<\/td>/);
    expect(runPage).toMatch(/#2 WD down.*<td>not isolable<\/td>/);
    expect(runPage).not.toMatch(/<script>alert|<img src=x/);
    const page = await get(d.port, "/runs/nov27/trials/6");
    expect(page.status).toBe(200);
    const csp = String(page.headers["content-security-policy"]);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(page.headers["x-content-type-options"]).toBe("nosniff");
    expect(page.body).not.toMatch(/<script>alert|<img src=x/);
    expect(page.body).toContain(
      "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;",
    );
    expect(page.body).toContain("&lt;/pre&gt;&lt;script&gt;alert(4)&lt;/script&gt;");
    expect(page.body).toContain("&lt;/pre&gt;&lt;script&gt;alert(5)&lt;/script&gt;");
    const json = await get(d.port, "/api/runs/nov27/trials");
    expect(json.headers["content-type"]).toMatch(/^application\/json/);
    expect(unpack(JSON.parse(json.body).table)[6]!.title).toBe(evil);
    const svg = await get(d.port, "/runs/nov27/progress.svg");
    expect(svg.headers["content-type"]).toBe("image/svg+xml");
    expect(svg.body).toContain("6 experiments, 2 kept improvements");
    expect(svg.body).not.toContain("<script>");
  });

  it("streams trials as the orchestrator records them, and never writes the ledger", async () => {
    const root = tempDir();
    const { ledger, run } = fixtureLedger(root);
    ledger.close();
    const db = Ledger.pathFor(root);
    const before = [hash(db), hash(`${db}-wal`)];
    const d = await serve(root);
    const first = JSON.parse((await get(d.port, "/api/runs/nov27/trials")).body);
    expect(unpack(first.table)).toHaveLength(6);
    expect(first.summary).toMatchObject({ experiments: 5, kept: 2, best: 0.85 });
    for (const path of ["/", "/runs/nov27", "/runs/nov27/trials/1", "/runs/nov27/timeline.svg"])
      expect((await get(d.port, path)).status).toBe(200);
    expect([hash(db), hash(`${db}-wal`)]).toEqual(before);

    const { after, open: pending } = first.cursor;
    const stream = events(
      d.port,
      `/api/runs/nov27/events?after=${after}&open=${pending.join(",")}`,
      (seen) =>
        seen.some((e) => e.event === "trials" && e.data.includes("a trial added while watching")),
    );
    await new Promise((r) => setTimeout(r, 300));
    const writer = Ledger.open(root);
    addTrial(writer, root, writer.run("nov27")!, {
      title: "a trial added while watching",
      verdict: "keep",
      metric: 0.5,
    });
    writer.close();
    const seen = await stream;
    const last = JSON.parse(seen.at(-1)!.data);
    // Only what changed is sent, with the run's new numbers.
    expect(unpack(last.table).map((t) => t.n)).toEqual([6]);
    expect(last.summary).toMatchObject({ kept: 3, best: 0.5, bestTrial: 6 });
    expect(run.tag).toBe("nov27");
  });

  it("names a set of charts with the numbers they were drawn from, and serves that set", async () => {
    const root = ledgerRoot();
    const d = await serve(root);
    const first = JSON.parse((await get(d.port, "/api/runs/nov27/charts")).body);
    expect(first.summary).toMatchObject({ experiments: 5, kept: 2, best: 0.85 });
    const writer = Ledger.open(root);
    addTrial(writer, root, writer.run("nov27")!, { title: "later", verdict: "keep", metric: 0.5 });
    writer.close();
    const second = JSON.parse((await get(d.port, "/api/runs/nov27/charts")).body);
    expect(second.set).not.toBe(first.set);
    expect(second.summary).toMatchObject({ experiments: 6, kept: 3, best: 0.5 });
    // A page that asked for the first set still gets it whole; without a set, the newest.
    const chart = async (query: string) =>
      (await get(d.port, `/runs/nov27/progress.svg${query}`)).body;
    expect(await chart(`?set=${first.set}`)).toContain("5 experiments, 2 kept improvements");
    expect(await chart(`?set=${second.set}`)).toContain("6 experiments, 3 kept improvements");
    expect(await chart("")).toContain("6 experiments, 3 kept improvements");
    expect(await chart("?set=x")).toContain("6 experiments, 3 kept improvements");
  });
});
