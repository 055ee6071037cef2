import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { Ledger } from "../../src/ledger/ledger.js";
import { startRun } from "../../src/orchestrator/index.js";
import type { Provider } from "../../src/providers/models.js";
import { createResearcher, researcherConfig } from "../../src/researchers/index.js";
import { createLlmResearcher } from "../../src/researchers/llm.js";
import { loadTask } from "../../src/task/load.js";
import { quadraticTask } from "../helpers.js";
import {
  type FakeProvider,
  type ReceivedRequest,
  startFakeProvider,
  type Turn,
} from "../providers/fake-provider.js";

let server: FakeProvider | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

const EDIT: Turn[] = [
  { toolCalls: [{ name: "read_file", input: { path: "train.mjs" } }] },
  {
    toolCalls: [
      {
        name: "edit_file",
        input: { path: "evaluate.mjs", old_text: "(x - 3) ** 2", new_text: "0" },
      },
    ],
  },
  {
    text: "The optimum is at X = 3.",
    toolCalls: [
      {
        name: "edit_file",
        input: { path: "train.mjs", old_text: "const X = 1;", new_text: "const X = 3;" },
      },
    ],
  },
  {
    toolCalls: [
      {
        name: "finish",
        input: { title: "X 1 → 3", hypothesis: "score is (X - 3)^2 + Y, smallest at X = 3" },
      },
    ],
  },
];

async function run(
  provider: Provider,
  turns: Turn[] | ((r: ReceivedRequest, i: number) => Turn),
  extra: { maxTrials?: number; maxUsd?: number; model?: string } = {},
) {
  const dialect = provider === "anthropic" ? "anthropic" : "openai";
  server = await startFakeProvider(dialect, turns, { key: "test-key" });
  const root = quadraticTask();
  const model =
    extra.model ??
    (provider === "anthropic"
      ? "claude-sonnet-4-5"
      : provider === "openai"
        ? "gpt-4.1"
        : "local-model");
  const researcher = createLlmResearcher({
    provider,
    model,
    baseUrl: server.baseUrl,
    apiKey: "test-key",
    maxTurns: 8,
    maxOutputTokens: 1000,
    retries: 3,
    retryBaseMs: 10,
    prices: { "local-model": { input: 0, output: 0 } },
  });
  const result = await startRun({
    root,
    tag: "llm",
    researcher,
    maxTrials: extra.maxTrials ?? 2,
    maxUsd: extra.maxUsd ?? null,
    lookahead: 0,
    signal: new AbortController().signal,
    emit: () => undefined,
  });
  const ledger = Ledger.open(root);
  const trials = ledger.trials(ledger.run("llm")!.id);
  const proposals = trials.map((t) => ledger.proposal(t.id));
  ledger.close();
  return { root, result, trials, proposals, requests: server.requests };
}

/** The tool results a request carries back to the model, in either dialect. */
function toolResults(request: ReceivedRequest): { text: string; error: boolean }[] {
  const messages = request.body.messages as Record<string, unknown>[];
  const out: { text: string; error: boolean }[] = [];
  for (const m of messages) {
    if (m.role === "tool") out.push({ text: String(m.content), error: false });
    if (Array.isArray(m.content))
      for (const part of m.content as Record<string, unknown>[])
        if (part.type === "tool_result")
          out.push({ text: JSON.stringify(part.content), error: part.is_error === true });
  }
  return out;
}

describe.each(["anthropic", "openai", "openai-compatible"] as const)(
  "the %s researcher",
  (provider) => {
    it("works with tools over the streamed wire protocol and gets its change kept", async () => {
      const { result, trials, proposals, requests, root } = await run(provider, EDIT);
      expect(result.status).toBe("finished");
      expect(trials[1]).toMatchObject({
        verdict: "keep",
        metric: 0.5,
        title: "X 1 → 3",
        hypothesis: "score is (X - 3)^2 + Y, smallest at X = 3",
        researcher: provider,
      });
      expect(
        readFileSync(join(root, ".autoresearch/runs/llm/trials/1/diff.patch"), "utf8"),
      ).toContain("+const X = 3;");
      expect(requests).toHaveLength(4);
      for (const r of requests) expect(r.body.stream).toBe(true);
      if (provider === "anthropic") expect(requests[0]!.headers["x-api-key"]).toBe("test-key");
      else expect(requests[0]!.headers.authorization).toBe("Bearer test-key");
      // The first message carries the brief: program, rules, files, history.
      const first = JSON.stringify(requests[0]!.body.messages);
      for (const part of [
        "Make score small.",
        "Metric: score, to minimize",
        "const X = 1;",
        "#0 keep score 4.5",
      ])
        expect(first).toContain(part);
      // Tool results go back to the model; the refused edit comes back as an error it can read.
      expect(toolResults(requests[1]!).at(-1)!.text).toContain("const X = 1;");
      const refused = toolResults(requests[2]!).at(-1)!;
      expect(refused.text).toContain("evaluate.mjs may not be changed (protected)");
      if (provider === "anthropic") expect(refused.error).toBe(true);
      expect(readFileSync(join(root, "evaluate.mjs"), "utf8")).toContain("(x - 3) ** 2");
      expect(proposals[1]!.usage).toMatchObject({ tokensIn: 4000, tokensOut: 400, turns: 4 });
      const expectedCost =
        provider === "anthropic"
          ? (4000 * 3 + 400 * 15) / 1e6
          : provider === "openai"
            ? (4000 * 2 + 400 * 8) / 1e6
            : 0;
      expect(proposals[1]!.usage!.costUsd).toBeCloseTo(expectedCost, 10);
    });
  },
);

describe("robustness and cost", () => {
  it("retries a 429 and an overloaded answer, then succeeds", async () => {
    const script = [
      {
        status: 429,
        errorType: "rate_limit_error",
        message: "slow down",
        headers: { "retry-after": "0" },
      },
      { status: 529, errorType: "overloaded_error", message: "overloaded" },
      ...EDIT,
    ];
    const { trials, requests } = await run("anthropic", script);
    expect(requests).toHaveLength(6);
    expect(trials[1]!.verdict).toBe("keep");
  });

  it("stops the run with a clear message when the key is refused (401)", async () => {
    const { result, trials } = await run(
      "openai",
      () => ({ status: 401, errorType: "invalid_api_key", message: "Incorrect API key provided" }),
      { maxTrials: 10 },
    );
    expect(result.status).toBe("failed");
    expect(result.reason).toMatch(
      /^the openai API refused the key \(HTTP 401\): Incorrect API key provided/,
    );
    expect(trials.map((t) => t.verdict)).toEqual(["keep", "invalid"]);
  });

  it("records an answer without an edit as an invalid trial with the reason", async () => {
    const { trials } = await run("anthropic", [
      { text: "I would change X." },
      { text: "Really." },
      ...EDIT,
    ]);
    expect(trials[1]).toMatchObject({
      verdict: "invalid",
      reason: 'the model stopped without finishing a proposal: "Really."',
    });
  });

  it("refuses to finish without an edit, and gives up after max_turns", async () => {
    const finishOnly = () => ({
      toolCalls: [{ name: "finish", input: { title: "nothing", hypothesis: "none" } }],
    });
    const { trials, requests } = await run("anthropic", finishOnly);
    expect(trials[1]).toMatchObject({
      verdict: "invalid",
      reason: "no finished proposal within 8 model calls (researcher.max_turns)",
    });
    expect(toolResults(requests[1]!).at(-1)!.text).toContain("no file was edited yet");
  });

  it("stops the run once --budget-usd is spent", async () => {
    const again = (_: ReceivedRequest, i: number) => EDIT[i % 4]!;
    const { result, trials } = await run("anthropic", again, { maxTrials: 10, maxUsd: 0.01 });
    expect(result.status).toBe("finished");
    expect(result.reason).toBe("reached --budget-usd 0.01: $0.0180 on researchers");
    expect(trials).toHaveLength(2);
  });

  it("needs a key from the environment, or a recording to replay", () => {
    const task = loadTask(
      quadraticTask({
        yaml: "editable: [train.mjs]\nrun: node train.mjs\nmetric: { name: score, goal: minimize }\nresearcher: { kind: anthropic }\n",
      }),
    );
    const config = researcherConfig(task, {}, {});
    expect(config).toMatchObject({ kind: "anthropic", model: "claude-sonnet-4-5" });
    expect(() => createResearcher(config, {}, {})).toThrow(UsageError);
    expect(() => createResearcher(config, {}, {})).toThrow(
      /needs ANTHROPIC_API_KEY in the environment/,
    );
    expect(createResearcher(config, {}, { ANTHROPIC_API_KEY: "k" }).name).toBe("anthropic");
    expect(() => researcherConfig(task, { researcher: "gemini" })).toThrow(
      /unknown researcher "gemini"; available: mutate, tune, anthropic/,
    );
    expect(() => researcherConfig(task, { researcher: "openai-compatible" }, {})).toThrow(
      /needs a model name/,
    );
    // Flags win over the environment, which wins over the task file.
    const env = { AUTORESEARCH_MODEL: "claude-opus-4-1", AUTORESEARCH_BASE_URL: "http://proxy/v1" };
    expect(researcherConfig(task, {}, env)).toMatchObject({
      model: "claude-opus-4-1",
      baseUrl: "http://proxy/v1",
    });
    expect(researcherConfig(task, { model: "claude-haiku-4-5" }, env).model).toBe(
      "claude-haiku-4-5",
    );
    expect(researcherConfig(task, {}, { AUTORESEARCH_RESEARCHER: "openai" })).toMatchObject({
      kind: "openai",
      model: "gpt-5",
    });
  });
});
