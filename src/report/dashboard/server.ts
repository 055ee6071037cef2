import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { UsageError } from "../../errors.js";
import { SwarmClient } from "../../swarm/index.js";
import { openLedgerReadOnly } from "../read-only.js";
import { checkAccess, cookieName, isLoopback } from "./auth.js";
import { ChartCache } from "./charts.js";
import { DASHBOARD_JS } from "./client.js";
import { placeholderSvg, runPage, runsPage } from "./pages.js";
import { cursorFrom, type Route, route, setFrom } from "./routes.js";
import { DASHBOARD_CSS } from "./style.js";
import { swarmPage } from "./swarm-page.js";
import { trialPage } from "./trial-page.js";
import { newestTrials, runView, tablePayload, trialViews } from "./views.js";
import { LedgerWatch } from "./watch.js";

export interface DashboardOptions {
  /** The task's folder (holding .autoresearch/ledger.db). */
  root: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Required on any address other than loopback. */
  token?: string | null;
  /** How often the ledger is checked for changes. */
  pollMs?: number;
  /** The database of a swarm to show at /swarm (postgres://role@host/db). */
  swarm?: string;
}

export interface Dashboard {
  /** Where to point a browser (with the token, if there is one). */
  url: string;
  port: number;
  close(): Promise<void>;
}

// Pages run only our own script and stylesheet, and talk only to this server.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'";
const KEEPALIVE_MS = 15_000;

/** Bodies larger than this are gzipped for clients that accept it (the trial table, charts). */
const COMPRESS_BYTES = 32_768;

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  let payload: string | Buffer = body;
  const all: Record<string, string | number> = { "Content-Type": type, ...headers };
  if (body.length > COMPRESS_BYTES && /\bgzip\b/.test(String(res.req.headers["accept-encoding"]))) {
    // The fastest level: a fifth of the bytes for a few milliseconds.
    payload = gzipSync(body, { level: 1 });
    all["Content-Encoding"] = "gzip";
    all.Vary = "Accept-Encoding";
  }
  all["Content-Length"] = Buffer.byteLength(payload);
  res.writeHead(status, all);
  res.end(payload);
}

const text = (res: ServerResponse, status: number, message: string) =>
  send(res, status, "text/plain; charset=utf-8", `${message}\n`);

/**
 * Starts the read-only dashboard over a task's ledger: the runs, a live run page
 * (server-sent events), trial pages, the progress chart and the slot timeline.
 * It opens the ledger read-only and never writes to it.
 */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const host = options.host ?? "127.0.0.1";
  const token = options.token || null;
  if (!isLoopback(host) && token === null)
    throw new UsageError(
      `--token: required with --host ${host}: anyone who can reach that address could read the ledger; pass --token (or set AUTORESEARCH_TOKEN), or serve on 127.0.0.1`,
    );
  const root = resolve(options.root);
  // Damage refused at the start, rather than as every page's "internal error".
  const ledger = openLedgerReadOnly(root, { verify: true });
  const watch = new LedgerWatch(ledger, options.pollMs);
  const charts = new ChartCache(ledger, watch);
  const streams = new Set<ServerResponse>();
  // Connected at the start, so that a wrong URL or password is said at once; when the
  // database goes away later, the swarm page says so and the rest goes on.
  const swarm = options.swarm
    ? await SwarmClient.connect(options.swarm, { applicationName: "autoresearch serve" }).catch(
        (error: Error) => {
          ledger.close();
          watch.close();
          throw error;
        },
      )
    : null;

  function events(req: IncomingMessage, res: ServerResponse, tag: string, params: URLSearchParams) {
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      Connection: "keep-alive",
    });
    res.write("retry: 2000\n\n");
    streams.add(res);
    const unsubscribe = watch.subscribe({
      tag,
      cursor: cursorFrom(params) ?? { after: 0, open: [] },
      send: (event, data) => res.write(`event: ${event}\ndata: ${data}\n\n`),
    });
    const ping = setInterval(() => res.write(": ping\n\n"), KEEPALIVE_MS);
    req.on("close", () => {
      clearInterval(ping);
      unsubscribe();
      streams.delete(res);
    });
  }

  async function serve(
    req: IncomingMessage,
    res: ServerResponse,
    r: Route,
    params: URLSearchParams,
  ) {
    const html = (body: string) => send(res, 200, "text/html; charset=utf-8", body);
    if (r.kind === "runs") return html(runsPage(ledger, root, swarm !== null));
    if (r.kind === "favicon") return send(res, 204, "image/x-icon", "");
    if (r.kind === "swarm")
      return swarm ? html(await swarmPage(swarm)) : text(res, 404, "no swarm: serve --swarm URL");
    if (r.kind === "static")
      return r.file === "dashboard.js"
        ? send(res, 200, "text/javascript; charset=utf-8", DASHBOARD_JS)
        : send(res, 200, "text/css; charset=utf-8", DASHBOARD_CSS);
    const run = ledger.run(r.tag);
    if (!run) return text(res, 404, `no run "${r.tag}"`);
    switch (r.kind) {
      case "run":
        return html(runPage(ledger, run));
      case "trial": {
        const trial = ledger.trial(run.id, r.n);
        if (!trial) return text(res, 404, `no trial ${r.n} in run "${r.tag}"`);
        return html(trialPage(ledger, root, run, trial));
      }
      case "chart": {
        const set = charts.get(run, setFrom(params));
        const svg = (await set.svg[r.chart]) ?? placeholderSvg("no replicate has run yet");
        return send(res, 200, "image/svg+xml", svg, { "Content-Security-Policy": SVG_CSP });
      }
      case "charts-json": {
        // Which set of charts to show now, and the numbers drawn with them.
        const set = charts.current(run);
        const body = JSON.stringify({ set: set.id, summary: set.summary });
        return send(res, 200, "application/json; charset=utf-8", body);
      }
      case "trials-json": {
        // `?last=N`: the newest trials only, so that the page can show its first screen
        // before the whole table has arrived.
        const last = params.get("last");
        const full = last === null || !/^\d{1,6}$/.test(last);
        const { trials, cursor } = full
          ? trialViews(ledger.db, run.id, null)
          : { trials: newestTrials(ledger.db, run.id, Number(last)), cursor: null };
        const body = tablePayload(trials, runView(ledger, run), cursor);
        return send(res, 200, "application/json; charset=utf-8", body);
      }
      case "events":
        return events(req, res, run.tag, params);
    }
  }

  // Known once listening; requests only come after that.
  let port = 0;
  const server = createServer((req, res) => {
    res.setHeader("Content-Security-Policy", CSP);
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Referrer-Policy", "no-referrer");
    res.setHeader("X-Frame-Options", "DENY");
    res.setHeader("Cache-Control", "no-store");
    if (req.method !== "GET" && req.method !== "HEAD")
      return send(res, 405, "text/plain", "read-only\n", { Allow: "GET, HEAD" });
    const target = req.url ?? "/";
    if (!target.startsWith("/")) return text(res, 400, "bad request");
    const q = target.indexOf("?");
    const path = q < 0 ? target : target.slice(0, q);
    const params = new URLSearchParams(q < 0 ? "" : target.slice(q + 1));
    const routed = route(path);
    if (routed.kind === "error") return text(res, routed.status, routed.reason);
    const access = checkAccess(req, path, params, token, cookieName(port));
    if (access.kind === "deny") return text(res, access.status, access.reason);
    if (access.kind === "exchange")
      return send(res, 303, "text/plain", "", {
        Location: access.location,
        "Set-Cookie": access.cookie,
      });
    serve(req, res, routed, params).catch((error: Error) => {
      process.stderr.write(`dashboard: ${req.url}: ${error.message}\n`);
      if (!res.headersSent) text(res, 500, "internal error");
      else res.end();
    });
  });
  const wanted = options.port ?? 8765;
  try {
    await new Promise<void>((resolvePromise, reject) => {
      server.once("error", reject);
      server.listen(wanted, host, () => resolvePromise());
    });
  } catch (error) {
    watch.close();
    ledger.close();
    // Most often another dashboard still serves there: say so, not a stack trace.
    if ((error as { code?: unknown }).code === "EADDRINUSE")
      throw new UsageError(
        `--port ${wanted}: the port is already in use on ${host} (another dashboard may be serving there); pick another with --port N, or --port 0 for any free one`,
      );
    throw error;
  }
  const address = server.address();
  port = typeof address === "object" && address ? address.port : (options.port ?? 0);
  const shown =
    host === "0.0.0.0" || host === "::" ? hostname() : host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/${token ? `?token=${encodeURIComponent(token)}` : ""}`,
    port,
    close: async () => {
      for (const res of streams) res.end();
      watch.close();
      await swarm?.close();
      await new Promise<void>((resolvePromise) => {
        server.close(() => resolvePromise());
        server.closeAllConnections();
      });
      ledger.close();
    },
  };
}
