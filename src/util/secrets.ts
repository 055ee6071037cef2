/** Names of variables that hold credentials; they never reach a replicate. */
const SECRET =
  /(_API_KEY|_TOKEN|_SECRET|_SECRET_KEY|_ACCESS_KEY|_PASSWORD)$|^(API_KEY|TOKEN|SECRET|PASSWORD)$/i;

export function isSecretName(name: string): boolean {
  return SECRET.test(name);
}

/** Values of the credentials in `env`, long enough to be told apart from ordinary text. */
export function secretValues(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.entries(env)
    .filter((e): e is [string, string] => isSecretName(e[0]) && (e[1]?.length ?? 0) >= 8)
    .map(([, value]) => value);
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
