/**
 * Names of variables that hold credentials; they never reach a replicate, and their values
 * are redacted wherever the harness records or shows text. Broad on purpose: a name that
 * only looks like one (SORT_KEY) is merely kept out.
 */
const SECRET =
  /(API_?KEY|_KEY|_KEY_ID|TOKEN|SECRET|PASSWORD|PASSWD|_PASS|_PAT|CREDENTIALS?)$|^(KEY|PASS)$/i;

/** The password of a URL with credentials (postgres://user:password@host). */
const URL_PASSWORD = /[a-z][a-z0-9+.-]*:\/\/[^/:@\s]+:([^@\s/]+)@/gi;

export function isSecretName(name: string): boolean {
  return SECRET.test(name);
}

/** Values of the credentials in `env`, long enough to be told apart from ordinary text. */
export function secretValues(env: NodeJS.ProcessEnv = process.env): string[] {
  const named = Object.entries(env)
    .filter((e): e is [string, string] => isSecretName(e[0]) && (e[1]?.length ?? 0) >= 8)
    .map(([, value]) => value);
  // A password inside any variable's URL (DATABASE_URL), whatever the variable is called.
  const inUrls = Object.values(env).flatMap((v) =>
    [...(v ?? "").matchAll(URL_PASSWORD)].map((m) => m[1]!).filter((p) => p.length >= 4),
  );
  return [...new Set([...named, ...inUrls])];
}

/**
 * Text with every credential of the environment replaced by "[redacted]": what a
 * researcher prints or answers is recorded, and an agent holds its API key.
 */
export function redact(text: string, values = secretValues()): string {
  let out = text;
  for (const value of values) out = out.split(value).join("[redacted]");
  return out;
}

/** A JSON-able value with credentials redacted in every string it holds (keys too). */
export function redactJson<T>(value: T, values = secretValues()): T {
  if (values.length === 0) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") return redact(v, values);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object")
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [redact(k, values), walk(x)]));
    return v;
  };
  return walk(value) as T;
}
