import { type LanguageModel, type ModelMessage, streamText, type ToolResultPart } from "ai";
import { ResearcherError, UsageError } from "../errors.js";
import type { ProposalUsage } from "../ledger/types.js";
import {
  baseUrlOf,
  createModel,
  DEFAULT_MODELS,
  KEY_VARIABLES,
  keyFromEnv,
  type Provider,
  probeProvider,
} from "../providers/models.js";
import { costOf, type Price, priceOf } from "../providers/prices.js";
import type { KeyedFetch } from "../providers/record.js";
import { describe, statusOf, withRetries } from "../providers/retry.js";
import { buildBrief } from "./brief.js";
import { MODEL_FLAG, researcherFields } from "./fields.js";
import type { ProposalRequest, ProposalResult, Researcher, ResearcherKind } from "./researcher.js";
import { TOOL_DEFINITIONS, WorkspaceTools } from "./tools.js";

export interface LlmOptions {
  provider: Provider;
  model: string;
  baseUrl: string | null;
  apiKey: string | null;
  maxTurns: number;
  maxOutputTokens: number;
  retries: number;
  /** The first retry's delay cap; later ones double. */
  retryBaseMs?: number;
  prices: Record<string, Price>;
  /** Records or replays each proposal's exchanges under its trial's number. */
  fetch?: KeyedFetch;
}

const CLOSING =
  "Propose the next experiment. Read what you need with the tools, make your edit with edit_file or write_file, then call finish with a short title and the hypothesis. One idea per trial.";

interface Step {
  messages: ModelMessage[];
  toolCalls: {
    toolCallId: string;
    toolName: string;
    input: unknown;
    invalid?: boolean;
    error?: unknown;
  }[];
  text: string;
  tokensIn: number;
  tokensOut: number;
}

/** One model call, streamed; stream errors are thrown so that retries can see them. */
async function step(
  model: LanguageModel,
  system: string,
  messages: ModelMessage[],
  o: LlmOptions,
  signal: AbortSignal,
): Promise<Step> {
  const result = streamText({
    model,
    system,
    messages,
    tools: TOOL_DEFINITIONS,
    maxRetries: 0,
    maxOutputTokens: o.maxOutputTokens,
    abortSignal: signal,
    // Errors are read from the stream below and handled there, not logged.
    onError: () => undefined,
  });
  for await (const part of result.fullStream) if (part.type === "error") throw part.error;
  const [response, toolCalls, text, usage] = await Promise.all([
    result.response,
    result.toolCalls,
    result.text,
    result.usage,
  ]);
  return {
    messages: response.messages,
    toolCalls: toolCalls.map((c) => ({ ...c, input: c.input })),
    text,
    tokensIn: usage.inputTokens ?? 0,
    tokensOut: usage.outputTokens ?? 0,
  };
}

/**
 * A researcher that is a language model working with tools: it reads the brief (program,
 * rules, incumbent files, history), reads and edits files of the trial's worktree, and
 * ends with `finish`. Each model call is retried on rate limits, overload and server
 * errors; a rejected key stops the run; an answer without an edit is an invalid proposal.
 */
export function createLlmResearcher(o: LlmOptions): Researcher {
  const modelFor = (trial: number) =>
    createModel({
      provider: o.provider,
      model: o.model,
      baseUrl: o.baseUrl,
      apiKey: o.apiKey,
      ...(o.fetch ? { fetch: o.fetch(String(trial)) } : {}),
    });
  return {
    name: o.provider,
    async propose(request: ProposalRequest): Promise<ProposalResult> {
      const { system, prompt } = await buildBrief(request, CLOSING);
      const model = modelFor(request.trial);
      const tools = new WorkspaceTools(request);
      const messages: ModelMessage[] = [{ role: "user", content: prompt }];
      const usage: ProposalUsage = {
        model: o.model,
        tokensIn: 0,
        tokensOut: 0,
        costUsd: 0,
        turns: 0,
      };
      const account = () => ({
        ...usage,
        costUsd: costOf(o.model, usage.tokensIn, usage.tokensOut, o.prices),
      });
      let nudged = false;
      while (usage.turns < o.maxTurns) {
        usage.turns++;
        let answer: Step;
        try {
          answer = await withRetries(() => step(model, system, messages, o, request.signal), {
            retries: o.retries,
            baseDelayMs: o.retryBaseMs ?? 1000,
            maxDelayMs: 60_000,
            signal: request.signal,
          });
        } catch (error) {
          return { ...failure(error, o), usage: account() };
        }
        usage.tokensIn += answer.tokensIn;
        usage.tokensOut += answer.tokensOut;
        messages.push(...answer.messages);
        if (answer.toolCalls.length === 0) {
          if (nudged)
            return {
              ok: false,
              reason: `the model stopped without finishing a proposal${answer.text ? `: "${answer.text.trim().slice(0, 200)}"` : " (an empty answer)"}`,
              usage: account(),
            };
          nudged = true;
          messages.push({
            role: "user",
            content:
              "Use the tools: make your edit, then call finish with a title and a hypothesis.",
          });
          continue;
        }
        const results: ToolResultPart[] = [];
        for (const call of answer.toolCalls) {
          const outcome = call.invalid
            ? { ok: false, text: `invalid arguments for ${call.toolName}: ${describe(call.error)}` }
            : await tools.run(call.toolName, call.input);
          results.push({
            type: "tool-result",
            toolCallId: call.toolCallId,
            toolName: call.toolName,
            output: outcome.ok
              ? { type: "text", value: outcome.text }
              : { type: "error-text", value: outcome.text },
          });
        }
        messages.push({ role: "tool", content: results });
        if (tools.finished)
          return {
            ok: true,
            ...tools.finished,
            usage: account(),
            detail: { model: o.model, turns: usage.turns, edited: [...tools.edited] },
          };
      }
      return {
        ok: false,
        reason: `no finished proposal within ${o.maxTurns} model calls (researcher.max_turns)`,
        usage: account(),
      };
    },
  };
}

/** Failures of the connection itself, not of one request. */
const UNREACHABLE =
  /econnrefused|enotfound|eai_again|ehostunreach|enetunreach|cannot connect|fetch failed/i;

/** A failed call as a proposal failure: rejected credentials are fatal, the rest invalid. */
function failure(error: unknown, o: LlmOptions): { ok: false; reason: string; fatal?: boolean } {
  const status = statusOf(error);
  const message = describe(error).slice(0, 300);
  if (status === 401 || status === 403)
    return {
      ok: false,
      fatal: true,
      reason: `the ${o.provider} API refused the key (HTTP ${status}): ${message}. Check the key in the environment.`,
    };
  // Retried already: a provider still out of reach stops the run rather than fail every trial.
  if (status === null && UNREACHABLE.test(message))
    return {
      ok: false,
      fatal: true,
      reason: `the ${o.provider} API cannot be reached after ${o.retries} retries: ${message}. Start the server or fix --base-url, then \`autoresearch resume\``,
    };
  return {
    ok: false,
    reason: `the ${o.provider} API call failed${status ? ` (HTTP ${status})` : ""}: ${message}`,
  };
}

/**
 * A model behind a provider's API. The key is read from the environment only; a missing
 * one is an error before the run starts, not in the middle of it.
 */
function llmKind(provider: Provider): ResearcherKind {
  return {
    name: provider,
    settings: {
      model: researcherFields.model,
      base_url: researcherFields.base_url,
      max_turns: researcherFields.max_turns,
      max_output_tokens: researcherFields.max_output_tokens,
      retries: researcherFields.retries,
      prices: researcherFields.prices,
    },
    flags: [
      MODEL_FLAG,
      {
        flags: "--base-url <url>",
        description: "the provider's base URL (an OpenAI-compatible server, a proxy)",
      },
    ],
    configure(config) {
      const model = config.model ?? DEFAULT_MODELS[provider];
      if (!model)
        throw new UsageError(
          `--model: the ${provider} researcher needs a model name (--model or researcher.model)`,
        );
      return { ...config, model };
    },
    checkBudget(config) {
      if (!priceOf(config.model!, config.prices))
        throw new UsageError(
          `--budget-usd: no price is known for the model ${config.model}; add researcher.prices.${config.model}: { input, output } (dollars per million tokens, 0 for a local model) to the task file`,
        );
    },
    async preflight(config, traffic, env) {
      // A replay needs no provider; a recording checks the real one.
      if (traffic.replaying) return;
      const url = baseUrlOf(provider, config.baseUrl, env);
      const probe = await probeProvider(provider, url, keyFromEnv(provider, env));
      if (probe.ok) return;
      throw new ResearcherError(
        probe.keyRefused
          ? `the ${provider} API at ${url} refused the key (${probe.reason}): check ${KEY_VARIABLES[provider].join(" or ")}`
          : `the ${provider} API at ${url} cannot be reached (${probe.reason}): start the server or fix --base-url (researcher.base_url), then run again`,
      );
    },
    create(config, traffic, env) {
      const apiKey = keyFromEnv(provider, env);
      if (!apiKey && !traffic.replaying && provider !== "openai-compatible")
        throw new UsageError(
          `--researcher ${provider} needs ${KEY_VARIABLES[provider][0]} in the environment (keys are read from there only), or --fake-responses FILE to replay a recording`,
        );
      return createLlmResearcher({
        provider,
        model: config.model!,
        baseUrl: config.baseUrl,
        apiKey,
        maxTurns: config.maxTurns,
        maxOutputTokens: config.maxOutputTokens,
        retries: config.retries,
        prices: config.prices,
        ...(traffic.fetch ? { fetch: traffic.fetch } : {}),
      });
    },
  };
}

export const anthropicResearcher = llmKind("anthropic");
export const openaiResearcher = llmKind("openai");
export const openaiCompatibleResearcher = llmKind("openai-compatible");
