import { appendFileSync, existsSync, readFileSync } from "node:fs";

export type Fetch = typeof globalThis.fetch;

/**
 * The fetch of one proposal, by its key (the trial's number): with several proposals in
 * flight, each recorded exchange belongs to its trial and is replayed to that trial alone.
 */
export type KeyedFetch = (key: string) => Fetch;

/** One request to a provider and its answer, as a line of a recording. */
interface Exchange {
  seq: number;
  /** The trial it was for (recordings made before keys were kept have none). */
  key?: string;
  method: string;
  path: string;
  request: unknown;
  status: number;
  headers: Record<string, string>;
  body: string;
}

// Only what the client needs to read an answer; request headers (which carry the key) are
// never written.
const KEPT_HEADERS = ["content-type", "retry-after", "retry-after-ms"];

function requestOf(input: Parameters<Fetch>[0], init?: Parameters<Fetch>[1]) {
  const url = new URL(
    typeof input === "string" ? input : input instanceof URL ? input.href : input.url,
  );
  const method = init?.method ?? (input instanceof Request ? input.method : "GET");
  return { path: url.pathname, method };
}

function lines(file: string): Exchange[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Exchange);
}

/**
 * A fetch that records every exchange with the provider to `file` (one JSON line each,
 * appended, so a resumed run continues its recording). Streamed answers are recorded
 * whole.
 */
export function recordingFetch(file: string, inner: Fetch = globalThis.fetch): KeyedFetch {
  let seq = lines(file).length;
  return (key) => async (input, init) => {
    const { path, method } = requestOf(input, init);
    const response = await inner(input, init);
    const body = await response.text();
    const headers: Record<string, string> = {};
    for (const name of KEPT_HEADERS) {
      const value = response.headers.get(name);
      if (value !== null) headers[name] = value;
    }
    let request: unknown = null;
    if (typeof init?.body === "string") {
      try {
        request = JSON.parse(init.body);
      } catch {
        request = init.body;
      }
    }
    const exchange: Exchange = {
      seq: seq++,
      key,
      method,
      path,
      request,
      status: response.status,
      headers,
      body,
    };
    appendFileSync(file, `${JSON.stringify(exchange)}\n`);
    return new Response(body, { status: response.status, headers });
  };
}

/**
 * A fetch that answers from a recording without a network or a key: each trial gets the
 * exchanges recorded for it, in order (a recording without keys is replayed in order). A
 * request to another endpoint than the recorded one, or one past the end, is an error that
 * says so.
 */
export function replayingFetch(file: string): KeyedFetch {
  if (!existsSync(file)) throw new Error(`--fake-responses: no such file ${file}`);
  const queues = new Map<string, Exchange[]>();
  for (const exchange of lines(file)) {
    const key = exchange.key ?? "";
    queues.set(key, [...(queues.get(key) ?? []), exchange]);
  }
  const keyed = !queues.has("");
  return (key) => async (input, init) => {
    const { path, method } = requestOf(input, init);
    const queue = queues.get(keyed ? key : "") ?? [];
    const exchange = queue.shift();
    const whose = keyed ? ` for trial ${key}` : "";
    if (!exchange)
      throw new Error(
        `--fake-responses: ${file} holds no more responses${whose} and the run asked for another (${method} ${path})`,
      );
    if (exchange.path !== path || exchange.method !== method)
      throw new Error(
        `--fake-responses: response ${exchange.seq} of ${file}${whose} answers ${exchange.method} ${exchange.path}, but the run asked for ${method} ${path}`,
      );
    return new Response(exchange.body, { status: exchange.status, headers: exchange.headers });
  };
}
