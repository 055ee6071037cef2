import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type Dashboard, startDashboard } from "../../src/report/dashboard/server.js";
import { isSecretName, redact, secretValues } from "../../src/util/secrets.js";
import { get } from "../dashboard/http.js";
import { quadraticTask, runCli, sh, tempDir } from "../helpers.js";

const KEY = "sk-ant-fake-7f3a9c1e5b2d4f6a8c0e";
const TOKEN = "ghp_fakeToken0123456789abcdefABCDEF";

/**
 * A researcher that does what a careless agent might: prints its whole environment,
 * puts its key in its answer, and once fails with the key in its error output.
 */
const RESEARCHER = `
const n = JSON.parse(require("node:fs").readFileSync(0, "utf8")).trial;
console.error(Object.entries(process.env).map(([k, v]) => k + "=" + v).join("\\n"));
if (n === 2) { console.error("request failed: 401 for key " + process.env.FAKE_API_KEY); process.exit(1); }
const fs = require("node:fs");
fs.writeFileSync("train.mjs", fs.readFileSync("train.mjs", "utf8").replace(/const X = [\\d.]+;/, "const X = " + (1 + n * 0.5) + ";"));
console.log(JSON.stringify({ title: "X up, says " + process.env.FAKE_API_KEY, hypothesis: "token " + process.env.GITHUB_TOKEN }));
`;

/** Every file under `dir`, recursively. */
function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

let dashboard: Dashboard | null = null;
afterAll(async () => {
  await dashboard?.close();
});

describe("secrets", () => {
  it("a run made with API keys in the environment leaves them in no artefact", async () => {
    const scripts = tempDir();
    writeFileSync(join(scripts, "researcher.cjs"), RESEARCHER);
    const root = quadraticTask({
      yaml: [
        "editable: [train.mjs]",
        // The replicate prints its environment into its log.
        "run: env; node train.mjs",
        "metric: { name: score, goal: minimize }",
        `researcher: { kind: command, command: "node ${join(scripts, "researcher.cjs")}" }`,
      ].join("\n"),
    });
    const env = { FAKE_API_KEY: KEY, GITHUB_TOKEN: TOKEN };
    const run = await runCli(["run", "-C", root, "--tag", "keys", "--max-trials", "4"], { env });
    expect(run.code).toBe(0);
    const report = await runCli(["report", "-C", root], { env });
    expect(report.code).toBe(0);

    // The run happened as it claims: a keep, and the failed proposal recorded.
    const tsv = readFileSync(join(root, ".autoresearch/runs/keys/results.tsv"), "utf8");
    expect(tsv).toContain("X up, says [redacted]");
    expect(tsv).toContain("request failed: 401 for key [redacted]");

    dashboard = await startDashboard({ root, port: 0 });
    const pages = await Promise.all(
      [
        "/",
        "/runs/keys",
        "/runs/keys/trials/1",
        "/runs/keys/trials/2",
        "/api/runs/keys/trials",
        "/runs/keys/progress.svg",
      ].map((path) => get(dashboard!.port, path)),
    );
    expect(pages.map((p) => p.status)).toEqual([200, 200, 200, 200, 200, 200]);

    const artefacts: [string, string][] = [
      ["run output", run.stdout + run.stderr],
      ["report output", report.stdout + report.stderr],
      ...files(root)
        .filter((f) => !f.includes("/.git/objects/"))
        .map((f): [string, string] => [f, readFileSync(f, "latin1")]),
      ["git objects", sh(root, "git cat-file --batch-all-objects --batch --unordered")],
      ...pages.map((p, i): [string, string] => [`dashboard page ${i}`, p.body]),
    ];
    // The search itself can find what it looks for.
    expect(artefacts.some(([, text]) => text.includes("[redacted]"))).toBe(true);
    const leaks = artefacts.filter(([, text]) => text.includes(KEY) || text.includes(TOKEN));
    expect(leaks.map(([where]) => where)).toEqual([]);
    // Scanned: the ledger, logs, reports and commits were all among them.
    const names = artefacts.map(([where]) => where).join("\n");
    for (const expected of ["ledger.db", "run.log", "report.html", "proposal.json", "results.tsv"])
      expect(names).toContain(expected);
  }, 120_000);
});

describe("the orchestrator's own environment", () => {
  it("shows no key in /proc/<pid>/environ to a replicate without the sandbox", async () => {
    const root = quadraticTask({
      yaml: [
        "editable: [train.mjs]",
        // $PPID of the shell the harness starts is the orchestrator.
        `run: 'd=$(dirname "$AR_RESULT_FILE"); tr "\\\\0" "\\\\n" < /proc/$PPID/environ > "$d/parent-env.txt"; tr "\\\\0" " " < /proc/$PPID/cmdline > "$d/parent-cmd.txt"; node train.mjs'`,
        "metric: { name: score, goal: minimize }",
        "sandbox: none",
      ].join("\n"),
    });
    const run = await runCli(["run", "-C", root, "--tag", "env", "--max-trials", "1"], {
      env: { FAKE_API_KEY: KEY, GITHUB_TOKEN: TOKEN },
    });
    expect(run.code, run.stderr).toBe(0);
    const dir = join(root, ".autoresearch/runs/env/trials/0");
    expect(readFileSync(join(dir, "parent-cmd.txt"), "utf8")).toContain("main.js run");
    const seen = readFileSync(join(dir, "parent-env.txt"), "utf8");
    // It read the environment the orchestrator started with, keys and all, but no value.
    expect(seen).toMatch(/^PATH=/m);
    expect(seen).toMatch(/^FAKE_API_KEY= +$/m);
    expect(seen).not.toContain(KEY);
    expect(seen).not.toContain(TOKEN);
  });
});

describe("what a replicate inherits", () => {
  it("is an allowlist: credentials under any name, and whatever the task does not name, stay out", async () => {
    const values = {
      DATABASE_URL: "postgres://app:hunter22-db-pass@db.internal/app",
      GITHUB_PAT: "github_pat_0123456789abcdefghij",
      PGPASSWORD: "pg-password-1234567",
      AWS_ACCESS_KEY_ID: "AKIAFAKEFAKEFAKE1234",
      CLOUD_REGION: "region-not-for-replicates",
    };
    const root = quadraticTask({
      yaml: [
        "editable: [train.mjs]",
        "run: env; node train.mjs",
        "metric: { name: score, goal: minimize }",
        "pass_env: [MY_SETTING]",
        "sandbox: none",
      ].join("\n"),
    });
    const run = await runCli(["run", "-C", root, "--tag", "allow", "--max-trials", "1"], {
      env: { ...values, MY_SETTING: "named-by-the-task", LC_ALL: "C.UTF-8" },
    });
    expect(run.code, run.stderr).toBe(0);
    const log = readFileSync(join(root, ".autoresearch/runs/allow/trials/0/run.log"), "utf8");
    expect(log).toContain("MY_SETTING=named-by-the-task\n");
    expect(log).toContain("LC_ALL=C.UTF-8\n");
    expect(log).toMatch(/^PATH=/m);
    for (const [name, value] of Object.entries(values)) {
      expect(log, name).not.toContain(value);
      expect(log, name).not.toContain(`${name}=`);
    }
  });
});

describe("what counts as a credential", () => {
  it("takes names beyond *_API_KEY and the password in any URL, for redaction", () => {
    for (const name of ["GITHUB_PAT", "PGPASSWORD", "AWS_ACCESS_KEY_ID", "HF_TOKEN", "X_API_KEY"])
      expect(isSecretName(name), name).toBe(true);
    for (const name of ["PATH", "LANG", "CUDA_VISIBLE_DEVICES", "DATABASE_URL"])
      expect(isSecretName(name), name).toBe(false);
    const env = { DATABASE_URL: "postgres://app:hunter22-db-pass@db.internal/app" };
    expect(
      redact("connecting to postgres://app:hunter22-db-pass@db.internal", secretValues(env)),
    ).toBe("connecting to postgres://app:[redacted]@db.internal");
  });
});
