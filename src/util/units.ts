const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/;
const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/i;

const SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };
const BYTES: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** "300s", "5m", "1.5h", "250ms" or a bare number of seconds → seconds; null if malformed. */
export function parseDuration(value: string | number): number | null {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value : null;
  const match = DURATION.exec(value.trim());
  if (!match) return null;
  return Number(match[1]) * (SECONDS[match[2] ?? "s"] ?? 1);
}

/** "10MB", "512KiB" or a bare number of bytes → bytes; null if malformed. */
export function parseSize(value: string | number): number | null {
  if (typeof value === "number") return Number.isInteger(value) && value >= 0 ? value : null;
  const match = SIZE.exec(value.trim());
  if (!match) return null;
  return Math.round(Number(match[1]) * (BYTES[(match[2] ?? "b").toLowerCase()] ?? 1));
}

/** 42.5s, 3m20s, 2h0m: rounded to the last unit shown, so never "1m60s". */
export function formatSeconds(seconds: number): string {
  if (seconds < 59.95) return `${Number(seconds.toFixed(1))}s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  const m = Math.round(seconds / 60);
  return `${Math.floor(m / 60)}h${m % 60}m`;
}
