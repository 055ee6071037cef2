import { isSecretName } from "../util/secrets.js";

/** The harness's environment without credentials and without stale AR_ variables. */
export function scrubbedEnv(source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined || isSecretName(name) || name.startsWith("AR_")) continue;
    env[name] = value;
  }
  return env;
}
