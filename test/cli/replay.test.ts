import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { quadraticTask, runCli, sh, tempDir } from "../helpers.js";
import { startFakeProvider } from "../providers/fake-provider.js";

describe("record and replay through the real command line", () => {
  it("records a run's provider traffic, then replays it without a key or a server to the same kept change", async () => {
    const server = await startFakeProvider(
      "anthropic",
      [
        { toolCalls: [{ name: "read_file", input: { path: "train.mjs" } }] },
        {
          toolCalls: [
            {
              name: "edit_file",
              input: {
                path: "train.mjs",
                old_text: "const DEPTH = 1;",
                new_text: "const DEPTH = 2;",
              },
            },
          ],
        },
        {
          toolCalls: [
            {
              name: "finish",
              input: {
                title: "two hidden layers",
                hypothesis: "more depth separates the spirals better",
              },
            },
          ],
        },
      ],
      { key: "sk-ant-test-secret" },
    );
    const dir = tempDir();
    const recording = join(dir, "traffic.jsonl");
    const base = ["run", "--researcher", "anthropic", "--max-trials", "2", "--tag", "rr"];
    try {
      const first = join(dir, "first");
      await runCli(["init", first]);
      const recorded = await runCli(
        [...base, "-C", first, "--base-url", server.baseUrl, "--record-responses", recording],
        {
          env: { ANTHROPIC_API_KEY: "sk-ant-test-secret" },
        },
      );
      expect(recorded.stderr).toBe("");
      expect(recorded.code).toBe(0);
    } finally {
      await server.close();
    }
    const lines = readFileSync(recording, "utf8").trim().split("\n");
    expect(lines).toHaveLength(3);
    expect(readFileSync(recording, "utf8")).not.toContain("sk-ant-test-secret");

    const second = join(dir, "second");
    await runCli(["init", second]);
    const env = { ANTHROPIC_API_KEY: "" };
    const replayed = await runCli([...base, "-C", second, "--fake-responses", recording], { env });
    expect(replayed.stderr).toBe("");
    expect(replayed.code).toBe(0);
    const ledger = Ledger.open(second);
    const trials = ledger.trials(ledger.run("rr")!.id);
    ledger.close();
    expect(trials[1]).toMatchObject({
      verdict: "keep",
      title: "two hidden layers",
      researcher: "anthropic",
    });
    expect(sh(second, "git show --format= autoresearch/rr -- train.mjs")).toContain(
      "+const DEPTH = 2;",
    );
  }, 120_000);
});

describe("replay with proposals in flight", () => {
  it("gives each trial the exchanges recorded for it, at the default lookahead", async () => {
    let finished = 0;
    const server = await startFakeProvider("anthropic", (request) => {
      const messages = request.body.messages as unknown[];
      // A proposal's first call reads the file, its second edits and finishes: two calls
      // each, so that proposals in flight interleave their calls.
      if (messages.length === 1)
        return { toolCalls: [{ name: "read_file", input: { path: "train.mjs" } }] };
      const k = ++finished;
      return {
        usage: { input: 100 * k, output: 10 * k },
        toolCalls: [
          {
            name: "edit_file",
            input: {
              path: "train.mjs",
              old_text: "const X = 1.0;",
              new_text: `const X = ${1 + k / 10};`,
            },
          },
          { name: "finish", input: { title: `variant ${k}`, hypothesis: "h" } },
        ],
      };
    });
    const dir = tempDir();
    const recording = join(dir, "traffic.jsonl");
    const base = ["run", "--researcher", "anthropic", "--max-trials", "5", "--tag", "rr"];
    const perTrial = (root: string) => {
      const ledger = Ledger.open(root);
      const trials = ledger.trials(ledger.run("rr")!.id);
      const rows = trials.map((t) => [
        t.n,
        t.title,
        ledger.proposal(t.id)?.usage?.tokensIn ?? null,
        t.metric,
      ]);
      ledger.close();
      return rows;
    };
    const first = quadraticTask();
    try {
      const recorded = await runCli(
        [...base, "-C", first, "--base-url", server.baseUrl, "--record-responses", recording],
        { env: { ANTHROPIC_API_KEY: "k" } },
      );
      expect(recorded.code).toBe(0);
    } finally {
      await server.close();
    }
    const second = quadraticTask();
    for (let i = 0; i < 2; i++) {
      const replay = i === 0 ? second : quadraticTask();
      const replayed = await runCli([...base, "-C", replay, "--fake-responses", recording], {
        env: { ANTHROPIC_API_KEY: "" },
      });
      expect(replayed.stderr).toBe("");
      expect(replayed.code).toBe(0);
      expect(perTrial(replay)).toEqual(perTrial(first));
    }
  }, 180_000);
});
