import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isIPv4 } from "node:net";

/** The cookie that carries the token; one per port, as cookies do not tell ports apart. */
export const cookieName = (port: number) => `autoresearch_token_${port}`;

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || (isIPv4(h) && h.startsWith("127."));
}

/** Compares secrets in constant time, whatever their lengths. */
function same(a: string, b: string): boolean {
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

function cookie(req: IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) {
      try {
        return decodeURIComponent(value.join("="));
      } catch {
        return null;
      }
    }
  }
  return null;
}

export type Access =
  | { kind: "allow" }
  /** The token came in the URL: set the cookie and send the browser to the clean URL. */
  | { kind: "exchange"; location: string; cookie: string }
  | { kind: "deny"; status: 401 | 403; reason: string };

/**
 * Decides whether a request may read the dashboard. With a token, it must come as a
 * Bearer header, as the cookie, or once as `?token=` (traded for the cookie). Without
 * one (loopback only), the Host header must name this machine, so that a web page on
 * another site cannot reach the dashboard through DNS rebinding.
 */
export function checkAccess(
  req: IncomingMessage,
  path: string,
  params: URLSearchParams,
  token: string | null,
  cookieKey: string,
): Access {
  if (token === null) {
    const host = (req.headers.host ?? "").replace(/:\d+$/, "");
    return isLoopback(host)
      ? { kind: "allow" }
      : { kind: "deny", status: 403, reason: "this dashboard answers only to localhost" };
  }
  const query = params.get("token");
  if (query !== null) {
    if (!same(query, token)) return { kind: "deny", status: 401, reason: "wrong token" };
    const rest = new URLSearchParams(params);
    rest.delete("token");
    const search = rest.toString();
    return {
      kind: "exchange",
      // One leading slash only: "//host" would send the browser to another site.
      location: `/${path.replace(/^\/+/, "")}${search ? `?${search}` : ""}`,
      cookie: `${cookieKey}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
    };
  }
  const header = req.headers.authorization ?? "";
  const bearer = /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim() ?? null;
  const presented = bearer ?? cookie(req, cookieKey);
  if (presented !== null && same(presented, token)) return { kind: "allow" };
  return {
    kind: "deny",
    status: 401,
    reason: "a token is required: open the URL that `autoresearch serve` printed",
  };
}
