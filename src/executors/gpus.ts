import { execFileSync } from "node:child_process";
import { UsageError } from "../errors.js";

/** The GPU indices nvidia-smi reports on this machine. */
export function detectGpus(): string[] {
  let out: string;
  try {
    out = execFileSync("nvidia-smi", ["--query-gpu=index", "--format=csv,noheader"], {
      encoding: "utf8",
    });
  } catch {
    throw new UsageError(
      "--gpus all: nvidia-smi is not available here; list the GPU indices instead (--gpus 0,1)",
    );
  }
  return out
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^\d+$/.test(l));
}

/** `--gpus all` or `--gpus 0,1,3` → GPU indices. */
export function parseGpus(value: string, detect: () => string[] = detectGpus): string[] {
  if (value === "all") {
    const found = detect();
    if (found.length === 0) throw new UsageError("--gpus all: nvidia-smi lists no GPU");
    return found;
  }
  const ids = value.split(",").map((s) => s.trim());
  if (ids.some((id) => !/^\d+$/.test(id)) || new Set(ids).size !== ids.length)
    throw new UsageError(
      `--gpus: "${value}" is not "all" or a list of distinct GPU indices such as 0,1,3`,
    );
  return ids;
}
