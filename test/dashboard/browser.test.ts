import { existsSync } from "node:fs";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { type Dashboard, startDashboard } from "../../src/report/dashboard/server.js";
import { processStartTime } from "../../src/util/proc.js";
import { tempDir } from "../helpers.js";
import { xTickLabels } from "../report/checks.js";
import { addTrial, fixtureLedger, HISTORY } from "../report/fixture.js";

const CHROMIUM = "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const EVIL = `<script>window.pwned=1</script><img src=x onerror="window.pwned=2">`;

let browser: BrowserContext;
const offsite: string[] = [];
const dashboards: Dashboard[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium (or ./scripts/install-test-deps.sh)`,
    );
  browser = await chromium.launchPersistentContext(tempDir("ar-chromium-"), {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
  });
  // Nothing the dashboard shows may reach beyond this machine's server.
  await browser.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === "127.0.0.1") return route.continue();
    offsite.push(url.href);
    return route.abort();
  });
  browser.on("dialog", (dialog) => {
    offsite.push(`dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  for (const d of dashboards.splice(0)) await d.close();
  expect(offsite).toEqual([]);
});

/** A run in progress: an orchestrator (this process) owns it and one trial is running. */
function liveRun(): { root: string; runId: number } {
  const root = tempDir();
  const { ledger, run } = fixtureLedger(root, [
    ...HISTORY,
    { title: EVIL, verdict: "discard", metric: 0.97 },
  ]);
  ledger.setRunStatus(run.id, "running");
  ledger.setOwner(run.id, process.pid, processStartTime(process.pid));
  const running = ledger.createTrial({
    runId: run.id,
    n: 7,
    baseline: false,
    parentCommit: "c".repeat(40),
    researcher: "mutate",
  });
  ledger.setTrialProposal(running.id, { title: "still running", hypothesis: null, proposeMs: 5 });
  ledger.setTrialState(running.id, "running");
  const replicate = ledger.startReplicate({
    trialId: running.id,
    idx: 0,
    seed: 1,
    slot: "cpu1",
    logPath: "/dev/null",
  });
  ledger.setReplicateRunning(replicate, Date.now());
  ledger.close();
  return { root, runId: run.id };
}

async function serve(root: string, options: { host?: string; token?: string } = {}) {
  const d = await startDashboard({ root, port: 0, pollMs: 150, ...options });
  dashboards.push(d);
  return d;
}

async function openRun(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.locator("body[data-ready]").waitFor();
}

const rows = (page: Page) => page.locator("#trials tbody tr");

/** Records the SVGs the page receives (the charts), by URL, as the browser got them. */
function recordSvgs(page: Page): Map<string, string> {
  const bodies = new Map<string, string>();
  page.on("response", (response) => {
    if (new URL(response.url()).pathname.endsWith(".svg"))
      response.text().then(
        (body) => bodies.set(response.url(), body),
        () => {},
      );
  });
  return bodies;
}

/** The SVG a chart's image shows now, once it has loaded and its body has been recorded. */
async function shownSvg(page: Page, bodies: Map<string, string>, id: string): Promise<string> {
  let svg: string | undefined;
  await expect
    .poll(
      async () => {
        const src = String(
          await page.evaluate(
            `(() => { const img = document.getElementById("${id}"); return img.complete && img.naturalWidth > 0 ? img.src : ""; })()`,
          ),
        );
        svg = bodies.get(src);
        return svg !== undefined;
      },
      { timeout: 10_000 },
    )
    .toBe(true);
  return svg!;
}

/** "N experiments, K kept improvements" from a progress chart's title, as numbers. */
function titleCounts(svg: string): { experiments: number; kept: number } {
  const m = /(\d+) experiments?, (\d+) kept improvements?<\/text>/.exec(svg);
  if (!m) throw new Error("no title in the progress chart");
  return { experiments: Number(m[1]), kept: Number(m[2]) };
}

describe("the dashboard in a browser", () => {
  it("shows a new trial without a reload while the run goes on", async () => {
    const { root } = liveRun();
    const d = await serve(root);
    const page = await browser.newPage();
    await openRun(page, `http://127.0.0.1:${d.port}/runs/nov27`);
    await expect.poll(() => rows(page).count()).toBe(8);
    // " · live" is added once the event stream is open, which may come after the table.
    await expect.poll(() => page.locator("#live").textContent()).toMatch(/running now · live/);
    await page.evaluate("window.loadedOnce = 'yes'");

    const writer = Ledger.open(root);
    const run = writer.run("nov27")!;
    const running = writer.trial(run.id, 7)!;
    writer.finishTrial(running.id, {
      verdict: "discard",
      reason: null,
      metric: 0.9,
      incumbentMetric: 0.85,
      metrics: {},
      runMs: 4000,
    });
    addTrial(writer, root, run, {
      title: "appeared without a reload",
      verdict: "keep",
      metric: 0.7,
    });
    writer.close();

    const fresh = rows(page).filter({ hasText: "appeared without a reload" });
    await fresh.waitFor({ timeout: 10_000 });
    expect(await fresh.locator(".verdict").textContent()).toBe("keep");
    await expect
      .poll(() => rows(page).filter({ hasText: "still running" }).locator(".verdict").textContent())
      .toBe("discard");
    // The numbers come with the charts drawn from the same moment, once those have loaded.
    await expect
      .poll(() => page.locator('[data-field="kept"]').textContent(), { timeout: 10_000 })
      .toBe("3");
    expect(await page.locator('[data-field="best"]').textContent()).toBe("0.7");
    expect(await page.evaluate("window.loadedOnce")).toBe("yes");
    await page.close();
  });

  it("opens a trial page with its diff, additions and removals coloured", async () => {
    const d = await serve(liveRun().root);
    const page = await browser.newPage();
    await openRun(page, `http://127.0.0.1:${d.port}/runs/nov27`);
    await page.getByRole("link", { name: "raise the learning rate" }).click();
    await page.waitForURL(/\/runs\/nov27\/trials\/1$/);
    expect(await page.locator("h1 .title").textContent()).toBe("raise the learning rate");
    expect(await page.locator("pre.diff .add").allTextContents()).toEqual(["+LR = 0.02"]);
    expect(await page.locator("pre.diff .del").allTextContents()).toEqual(["-LR = 0.01"]);
    const colour = (cls: string) =>
      page.evaluate(`getComputedStyle(document.querySelector("pre.diff .${cls}")).backgroundColor`);
    expect(await colour("add")).toBe("rgb(218, 251, 225)");
    expect(await colour("del")).toBe("rgb(255, 235, 233)");
    expect(await page.locator("pre.log").first().textContent()).toContain("training...");
    await page.close();
  });

  it("shows titles holding <script> and <img onerror> as text, in the table and on the trial page", async () => {
    const d = await serve(liveRun().root);
    const page = await browser.newPage();
    await openRun(page, `http://127.0.0.1:${d.port}/runs/nov27`);
    const cell = rows(page).filter({ hasText: "window.pwned" }).locator("td.title");
    expect(await cell.textContent()).toBe(EVIL);
    expect(await page.locator("main img[src='x']").count()).toBe(0);
    await page.waitForTimeout(300);
    expect(await page.evaluate("typeof window.pwned")).toBe("undefined");
    await cell.locator("a").click();
    await page.waitForURL(/\/trials\/6$/);
    expect(await page.locator("h1 .title").textContent()).toBe(EVIL);
    expect(await page.locator("main img[src='x']").count()).toBe(0);
    expect(await page.evaluate("typeof window.pwned")).toBe("undefined");
    await page.close();
  });

  it("sorts and filters the table by verdict, researcher and slot", async () => {
    const d = await serve(liveRun().root);
    const page = await browser.newPage();
    await openRun(page, `http://127.0.0.1:${d.port}/runs/nov27`);
    await page.locator('select[data-filter="verdict"]').selectOption("keep");
    expect(await rows(page).locator(".verdict").allTextContents()).toEqual([
      "keep",
      "keep",
      "keep",
    ]);
    await page.locator('select[data-filter="verdict"]').selectOption("");
    await page.locator('select[data-filter="slot"]').selectOption("cpu1");
    expect(await rows(page).locator("td.title").allTextContents()).toEqual([
      "still running",
      "deeper model",
      "wider model",
    ]);
    await page.locator('select[data-filter="slot"]').selectOption("");
    await page.locator('select[data-filter="researcher"]').selectOption("baseline");
    expect(await rows(page).count()).toBe(1);
    await page.locator('select[data-filter="researcher"]').selectOption("");
    await page.locator('th[data-key="metric"]').click();
    const metrics = (await rows(page).locator("td:nth-child(4)").allTextContents())
      .filter((m) => m !== "—")
      .map(Number);
    expect(metrics).toEqual([...metrics].sort((a, b) => a - b));
    expect(metrics[0]).toBe(0.85);
    await page.close();
  });

  it("on 0.0.0.0 asks for the token, then keeps it as a cookie for the page, the data and the stream", async () => {
    const { root } = liveRun();
    const d = await serve(root, { host: "0.0.0.0", token: "tok-123" });
    const page = await browser.newPage();
    const denied = await page.goto(`http://127.0.0.1:${d.port}/runs/nov27`);
    expect(denied?.status()).toBe(401);
    await openRun(page, `http://127.0.0.1:${d.port}/runs/nov27?token=tok-123`);
    expect(page.url()).toBe(`http://127.0.0.1:${d.port}/runs/nov27`);
    await expect.poll(() => rows(page).count()).toBe(8);
    const writer = Ledger.open(root);
    addTrial(writer, root, writer.run("nov27")!, {
      title: "seen through the cookie",
      verdict: "discard",
      metric: 1.2,
    });
    writer.close();
    await rows(page).filter({ hasText: "seen through the cookie" }).waitFor({ timeout: 10_000 });
    await page.close();
  });

  it("labels the slot timeline with distinct clock times while a trial runs", async () => {
    const d = await serve(liveRun().root);
    const page = await browser.newPage();
    const bodies = recordSvgs(page);
    await openRun(page, `http://127.0.0.1:${d.port}/runs/nov27`);
    const svg = await shownSvg(page, bodies, "timeline");
    expect(svg).toContain("running");
    const ticks = xTickLabels(svg);
    // Not ".500" on every tick: times of day, UTC, each different.
    expect(ticks.length).toBeGreaterThanOrEqual(3);
    for (const tick of ticks) expect(tick).toMatch(/^\d\d:\d\d(:\d\d)?$/);
    expect(new Set(ticks).size).toBe(ticks.length);
    expect(svg).toContain(">time (UTC)</text>");
    await page.close();
  });

  it("never shows numbers that disagree with the chart beside them, also as trials arrive", async () => {
    const { root } = liveRun();
    const d = await serve(root);
    const page = await browser.newPage();
    const bodies = recordSvgs(page);
    await openRun(page, `http://127.0.0.1:${d.port}/runs/nov27`);
    await expect
      .poll(() => page.locator("#live").textContent(), { timeout: 10_000 })
      .toMatch(/· live/);
    expect(titleCounts(await shownSvg(page, bodies, "progress"))).toEqual({
      experiments: 6,
      kept: 2,
    });
    // Each time the boxes or the charts change, note what the page shows at that moment.
    await page.evaluate(`(() => {
      window.seen = [];
      const note = () => window.seen.push({
        experiments: document.querySelector('[data-field="experiments"]').textContent,
        kept: document.querySelector('[data-field="kept"]').textContent,
        chart: document.getElementById("progress").src,
      });
      note();
      new MutationObserver(note).observe(document.querySelector("main"), {
        subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ["src"],
      });
    })()`);

    const writer = Ledger.open(root);
    const run = writer.run("nov27")!;
    writer.finishTrial(writer.trial(run.id, 7)!.id, {
      verdict: "discard",
      reason: null,
      metric: 0.9,
      incumbentMetric: 0.85,
      metrics: {},
      runMs: 4000,
    });
    addTrial(writer, root, run, { title: "a live keep", verdict: "keep", metric: 0.7 });
    writer.close();

    await expect
      .poll(() => page.locator('[data-field="experiments"]').textContent(), { timeout: 10_000 })
      .toBe("8");
    expect(titleCounts(await shownSvg(page, bodies, "progress"))).toEqual({
      experiments: 8,
      kept: 3,
    });
    const seen = (await page.evaluate("window.seen")) as {
      experiments: string;
      kept: string;
      chart: string;
    }[];
    const shown = seen.filter((s) => s.chart !== "");
    expect(shown.length).toBeGreaterThan(1);
    for (const s of shown) {
      await expect.poll(() => bodies.has(s.chart), { timeout: 5_000 }).toBe(true);
      expect(titleCounts(bodies.get(s.chart)!)).toEqual({
        experiments: Number(s.experiments),
        kept: Number(s.kept),
      });
    }
    await page.close();
  });
});
