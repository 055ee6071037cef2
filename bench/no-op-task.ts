import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A task whose replicate does nothing but print its metric, committed in a new repository
 * under the system's temporary folder: the harness's own cost, with nothing else in it.
 */
export function noOpTask(prefix: string, trainPy: string): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(
    join(root, "autoresearch.yaml"),
    [
      "editable: [train.py]",
      "run: 'true && echo --- && echo score: 1'",
      "metric: { name: score, goal: minimize }",
      "sandbox: none",
    ].join("\n"),
  );
  writeFileSync(join(root, "train.py"), trainPy);
  execFileSync(
    "/bin/sh",
    ["-c", "git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm task"],
    { cwd: root },
  );
  return root;
}
