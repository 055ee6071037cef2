import type { TransferTable } from "../../ledger/promotions.js";
import { hostState, type SwarmClient } from "../../swarm/index.js";
import { escapeHtml, fmtNumber, fmtTime } from "../html.js";
import { layout } from "./pages.js";

/** How many of the swarm's latest trials the page lists. */
const LATEST = 50;

/**
 * The swarm at a glance, read from its database on every load: the line, each hardware
 * class's best, the hosts, what runs where, and the latest trials of every host. The
 * page reloads itself every few seconds; a database that cannot be reached is said, not
 * thrown.
 */
export async function swarmPage(client: SwarmClient): Promise<string> {
  let body: string;
  try {
    const [status, line, flying, history, promotions] = await Promise.all([
      client.status(),
      client.line(),
      client.inFlight(),
      client.history({ withDiffs: false }),
      client.promotions(),
    ]);
    const td = (x: unknown, cls = "") => `<td${cls ? ` class="${cls}"` : ""}>${escapeHtml(x)}</td>`;
    const table = (head: string[], rows: string[], empty: string) =>
      `<table><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr></thead><tbody>${
        rows.join("\n") ||
        `<tr><td colspan="${head.length}" class="muted">${escapeHtml(empty)}</td></tr>`
      }</tbody></table>`;
    const lineText = !line
      ? "no line yet (swarm init has not run)"
      : line.host
        ? `version ${line.version}: ${line.title ?? ""} (by ${line.host}, ${line.commitSha.slice(0, 12)})`
        : `version ${line.version}: the base (${line.commitSha.slice(0, 12)})`;
    body = [
      `<h1>Swarm <span class="muted">· ${escapeHtml(client.where)}</span></h1>`,
      `<p>${status.trials} trials, ${status.keeps} keeps · line <b data-field="line">${escapeHtml(lineText)}</b></p>`,
      "<h2>Best per hardware class</h2>",
      table(
        ["class", "best", "host", "commit"],
        status.best.map(
          (b) =>
            `<tr>${td(b.hardwareClass)}${td(fmtNumber(b.metric), "num")}${td(b.host)}${td(b.commitSha?.slice(0, 12))}</tr>`,
        ),
        "No keep yet.",
      ),
      "<h2>Hosts</h2>",
      table(
        [
          "host",
          "state",
          "class",
          "slots",
          "stages",
          "trials",
          "keeps",
          "spend",
          "running",
          "last seen (UTC)",
        ],
        status.hosts.map(
          (h) =>
            `<tr>${td(h.name)}${td(hostState(h))}${td(h.hardwareClass)}${td(h.slots, "num")}${td(h.stages.join(", "))}${td(h.trials, "num")}${td(h.keeps, "num")}${td(`$${h.costUsd.toFixed(2)}`, "num")}${td(h.inFlight, "num")}${td(fmtTime(h.lastSeen))}</tr>`,
        ),
        "No host has joined yet.",
      ),
      "<h2>Running now</h2>",
      table(
        ["host", "trial", "since (UTC)"],
        flying.map(
          (c) => `<tr>${td(c.host)}${td(c.title ?? "(untitled)")}${td(fmtTime(c.claimedAt))}</tr>`,
        ),
        "Nothing runs now.",
      ),
      "<h2>Promotions</h2>",
      table(
        ["line version", "commit", "stage", "state", "host", "stacked", "changes that transfer"],
        promotions.map((p) => {
          // Written by a host: read as what it should be, not trusted to be it.
          const t = p.transfer as Partial<TransferTable> | null;
          const rows = Array.isArray(t?.rows) ? t.rows : [];
          const judged = rows.filter((r) => r?.transfers === true || r?.transfers === false);
          const held = judged.filter((r) => r.transfers).length;
          const stacked = typeof t?.stacked === "number" ? t.stacked : null;
          const done = p.state === "done";
          return `<tr>${td(p.version, "num")}${td(p.commit.slice(0, 12))}${td(p.stage)}${td(p.state === "failed" ? `failed: ${p.reason ?? ""}` : p.state)}${td(p.host ?? "")}${td(done ? fmtNumber(stacked) : "", "num")}${td(done ? `${held} of ${judged.length}` : "")}</tr>`;
        }),
        "No promotion asked for yet.",
      ),
      `<h2>Latest trials</h2>`,
      table(
        ["host", "trial", "title", "verdict", "value", "class", "recorded (UTC)"],
        history.trials
          .slice(-LATEST)
          .reverse()
          .map(
            (t) =>
              `<tr>${td(t.host)}${td(t.uid)}${td(t.title)}${td(t.verdict)}${td(fmtNumber(t.metric), "num")}${td(t.hardwareClass)}${td(fmtTime(t.recordedAt))}</tr>`,
          ),
        "No trial yet.",
      ),
    ].join("\n");
  } catch (error) {
    body = `<h1>Swarm</h1><p class="muted">${escapeHtml((error as Error).message)}</p>`;
  }
  return layout("swarm", body).replace(
    "</title>",
    '</title>\n<meta http-equiv="refresh" content="3">',
  );
}
