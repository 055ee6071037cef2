/** What a URL asks for. Every parameter is checked here, before any handler sees it. */
export type Route =
  | { kind: "runs" }
  | { kind: "run"; tag: string }
  | { kind: "trial"; tag: string; n: number }
  | { kind: "chart"; tag: string; chart: "progress" | "timeline" }
  | { kind: "trials-json"; tag: string }
  | { kind: "charts-json"; tag: string }
  | { kind: "events"; tag: string }
  | { kind: "static"; file: "dashboard.js" | "dashboard.css" }
  | { kind: "favicon" }
  | { kind: "swarm" };

export type Routed = Route | { kind: "error"; status: 400 | 404; reason: string };

// The same rule as run tags: a plain ref component, never a path.
const TAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NUMBER = /^\d{1,9}$/;

const bad = (reason: string): Routed => ({ kind: "error", status: 400, reason });
const missing: Routed = { kind: "error", status: 404, reason: "no such page" };

/**
 * Splits and decodes a path. Anything that could climb out of a folder (`..`, `.`,
 * encoded slashes or backslashes, NUL) is refused outright rather than normalised.
 */
function segments(pathname: string): string[] | null {
  const parts = pathname.split("/").slice(1);
  const decoded: string[] = [];
  for (const part of parts) {
    let text: string;
    try {
      text = decodeURIComponent(part);
    } catch {
      return null;
    }
    if (text === "." || text === ".." || /[/\\\0]/.test(text) || text.includes("..")) return null;
    decoded.push(text);
  }
  if (decoded.at(-1) === "" && decoded.length > 1) decoded.pop();
  return decoded;
}

function tagOf(text: string): string | null {
  return TAG.test(text) ? text : null;
}

/** Maps a URL path to a route, or to the error to answer with. */
export function route(pathname: string): Routed {
  const parts = segments(pathname);
  if (!parts) return bad("bad path");
  const [first, second, third, fourth] = parts;
  if (parts.length === 1 && first === "") return { kind: "runs" };
  if (first === "favicon.ico" && parts.length === 1) return { kind: "favicon" };
  if (first === "swarm" && parts.length === 1) return { kind: "swarm" };
  if (first === "static" && parts.length === 2) {
    if (second === "dashboard.js" || second === "dashboard.css")
      return { kind: "static", file: second };
    return missing;
  }
  if (first === "runs" && second !== undefined) {
    const tag = tagOf(second);
    if (!tag) return bad("bad run tag");
    if (parts.length === 2) return { kind: "run", tag };
    if (parts.length === 3 && third === "progress.svg")
      return { kind: "chart", tag, chart: "progress" };
    if (parts.length === 3 && third === "timeline.svg")
      return { kind: "chart", tag, chart: "timeline" };
    if (parts.length === 4 && third === "trials") {
      if (!NUMBER.test(fourth!)) return bad("bad trial number");
      return { kind: "trial", tag, n: Number(fourth) };
    }
    return missing;
  }
  if (first === "api" && second === "runs" && third !== undefined && parts.length === 4) {
    const tag = tagOf(third);
    if (!tag) return bad("bad run tag");
    if (fourth === "trials") return { kind: "trials-json", tag };
    if (fourth === "charts") return { kind: "charts-json", tag };
    if (fourth === "events") return { kind: "events", tag };
    return missing;
  }
  return missing;
}

/** A cursor from `?after=N&open=1,2,3`, or null if absent or malformed. */
export function cursorFrom(params: URLSearchParams): { after: number; open: number[] } | null {
  const after = params.get("after");
  if (after === null || !NUMBER.test(after)) return null;
  const openText = params.get("open") ?? "";
  const open = openText === "" ? [] : openText.split(",");
  if (open.length > 10_000 || !open.every((id) => NUMBER.test(id))) return null;
  return { after: Number(after), open: open.map(Number) };
}

/** The chart set `?set=N` names; null when absent or malformed. */
export function setFrom(params: URLSearchParams): number | null {
  const set = params.get("set");
  return set !== null && NUMBER.test(set) ? Number(set) : null;
}
