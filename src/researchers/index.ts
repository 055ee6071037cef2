import { UsageError } from "../errors.js";
import {
  DEFAULT_MODELS,
  KEY_VARIABLES,
  keyFromEnv,
  PROVIDERS,
  type Provider,
} from "../providers/models.js";
import { priceOf } from "../providers/prices.js";
import { type Fetch, recordingFetch, replayingFetch } from "../providers/record.js";
import { RESEARCHER_KINDS } from "../task/schema.js";
import type { ResearcherSettings, Task } from "../task/task.js";
import { createCodingAgentResearcher } from "./coding-agent.js";
import { createCommandResearcher } from "./command.js";
import { createLlmResearcher } from "./llm.js";
import { createMutateResearcher } from "./mutate.js";
import type { Researcher } from "./researcher.js";

/** A run's researcher settings: the task file's, overridden by flags. Stored with the run; never a key. */
export interface ResearcherConfig extends Omit<ResearcherSettings, "kind"> {
  kind: string;
}

export interface ResearcherFlags {
  researcher?: string;
  model?: string;
  baseUrl?: string;
}

/** Where provider traffic is recorded to or replayed from. */
export interface Traffic {
  record?: string;
  replay?: string;
}

/**
 * The task file's researcher settings, overridden by the environment
 * (AUTORESEARCH_RESEARCHER, AUTORESEARCH_MODEL, AUTORESEARCH_BASE_URL), overridden by flags.
 * The providers' own ANTHROPIC_BASE_URL and OPENAI_BASE_URL apply when no base URL is set.
 */
export function researcherConfig(
  task: Task,
  flags: ResearcherFlags,
  env = process.env,
): ResearcherConfig {
  const kind = flags.researcher ?? env.AUTORESEARCH_RESEARCHER ?? task.researcher.kind ?? "mutate";
  if (!(RESEARCHER_KINDS as readonly string[]).includes(kind))
    throw new UsageError(
      `--researcher: unknown researcher "${kind}"; available: ${RESEARCHER_KINDS.join(", ")}`,
    );
  const provider = (PROVIDERS as readonly string[]).includes(kind) ? (kind as Provider) : null;
  const model =
    flags.model ??
    env.AUTORESEARCH_MODEL ??
    task.researcher.model ??
    (provider ? DEFAULT_MODELS[provider] : null);
  if (provider === "openai-compatible" && !model)
    throw new UsageError(
      "--model: the openai-compatible researcher needs a model name (--model or researcher.model)",
    );
  if (kind === "command" && !task.researcher.command)
    throw new UsageError(
      `${task.file}: researcher.command: is required for the command researcher`,
    );
  const baseUrl = flags.baseUrl ?? env.AUTORESEARCH_BASE_URL ?? task.researcher.baseUrl;
  return { ...task.researcher, kind, model, baseUrl };
}

/** Refuses a spending limit that cannot be checked: the model's price must be known. */
export function checkBudget(config: ResearcherConfig, maxUsd: number | null): void {
  if (maxUsd === null || !(PROVIDERS as readonly string[]).includes(config.kind)) return;
  if (!priceOf(config.model!, config.prices))
    throw new UsageError(
      `--budget-usd: no price is known for the model ${config.model}; add researcher.prices.${config.model}: { input, output } (dollars per million tokens, 0 for a local model) to the task file`,
    );
}

/** The fetch all model researchers of a session share: recording, replaying, or the real one. */
export function trafficFetch(traffic: Traffic): Fetch | undefined {
  if (traffic.replay) return replayingFetch(traffic.replay);
  if (traffic.record) return recordingFetch(traffic.record);
  return undefined;
}

/**
 * The researcher for `config`. Keys come from the environment only; a missing one is an
 * error now, not in the middle of a run. `fetch` replays or records provider traffic.
 */
export function createResearcher(
  config: ResearcherConfig,
  traffic: { fetch?: Fetch; replaying?: boolean } = {},
  env = process.env,
): Researcher {
  switch (config.kind) {
    case "mutate":
      return createMutateResearcher();
    case "claude-code":
    case "codex":
      return createCodingAgentResearcher(config.kind, config);
    case "command":
      return createCommandResearcher(config);
  }
  const provider = config.kind as Provider;
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
}
