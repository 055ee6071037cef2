/** Names of variables that hold credentials; they never reach a replicate. */
const SECRET =
  /(_API_KEY|_TOKEN|_SECRET|_SECRET_KEY|_ACCESS_KEY|_PASSWORD)$|^(API_KEY|TOKEN|SECRET|PASSWORD)$/i;

export function isSecretName(name: string): boolean {
  return SECRET.test(name);
}

/** The harness's environment without credentials and without stale AR_ variables. */
export function scrubbedEnv(source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined || isSecretName(name) || name.startsWith("AR_")) continue;
    env[name] = value;
  }
  return env;
}
