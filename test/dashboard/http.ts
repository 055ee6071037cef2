import { request } from "node:http";

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * A GET with the path sent exactly as written: no client-side normalisation of `..`
 * or of encoded characters, so that the server's own checks are what is tested.
 */
export function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Opens an event stream and collects its events until `until` says enough (or the time is up). */
export function events(
  port: number,
  path: string,
  until: (events: { event: string; data: string }[]) => boolean,
  timeoutMs = 10_000,
): Promise<{ event: string; data: string }[]> {
  return new Promise((resolve, reject) => {
    const seen: { event: string; data: string }[] = [];
    const req = request({ host: "127.0.0.1", port, path }, (res) => {
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let end = buffer.indexOf("\n\n");
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data !== undefined) seen.push({ event, data });
          end = buffer.indexOf("\n\n");
        }
        if (until(seen)) {
          clearTimeout(timer);
          req.destroy();
          resolve(seen);
        }
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(seen)}`));
    }, timeoutMs);
    req.on("error", (error) => {
      if (!req.destroyed) reject(error);
    });
    req.end();
  });
}

/** The trials of a packed table (rows of values under one list of column names) as objects. */
export function unpack(table: { columns: string[]; rows: unknown[][] }): Record<string, unknown>[] {
  return table.rows.map((values) =>
    Object.fromEntries(table.columns.map((c, i) => [c, values[i]])),
  );
}
