import { appendFileSync, existsSync, readFileSync } from "node:fs";

export type Fetch = typeof globalThis.fetch;

/** One request to a provider and its answer, as a line of a recording. */
interface Exchange {
  seq: number;
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
export function recordingFetch(file: string, inner: Fetch = globalThis.fetch): Fetch {
  let seq = lines(file).length;
  return async (input, init) => {
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
 * A fetch that answers from a recording, in order, without a network or a key. A request
 * to another endpoint than the recorded one, or one past the end, is an error that says so.
 */
export function replayingFetch(file: string): Fetch {
  if (!existsSync(file)) throw new Error(`--fake-responses: no such file ${file}`);
  const exchanges = lines(file);
  let next = 0;
  return async (input, init) => {
    const { path, method } = requestOf(input, init);
    const exchange = exchanges[next];
    if (!exchange)
      throw new Error(
        `--fake-responses: ${file} holds ${exchanges.length} responses and the run asked for another (${method} ${path})`,
      );
    if (exchange.path !== path || exchange.method !== method)
      throw new Error(
        `--fake-responses: response ${next} of ${file} answers ${exchange.method} ${exchange.path}, but the run asked for ${method} ${path}`,
      );
    next++;
    return new Response(exchange.body, { status: exchange.status, headers: exchange.headers });
  };
}
