import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import type { LanguageModel } from "ai";
import type { Fetch } from "./record.js";

export const PROVIDERS = ["anthropic", "openai", "openai-compatible"] as const;
export type Provider = (typeof PROVIDERS)[number];

export const DEFAULT_MODELS: Record<Provider, string | null> = {
  anthropic: "claude-sonnet-4-5",
  openai: "gpt-5",
  "openai-compatible": null,
};

/** Where each provider's key is read from; keys come only from the environment. */
export const KEY_VARIABLES: Record<Provider, string[]> = {
  anthropic: ["ANTHROPIC_API_KEY"],
  openai: ["OPENAI_API_KEY"],
  "openai-compatible": ["OPENAI_COMPATIBLE_API_KEY", "OPENAI_API_KEY"],
};

export function keyFromEnv(
  provider: Provider,
  env: NodeJS.ProcessEnv = process.env,
): string | null {
  for (const name of KEY_VARIABLES[provider]) if (env[name]) return env[name]!;
  return null;
}

export interface ModelSettings {
  provider: Provider;
  model: string;
  baseUrl: string | null;
  apiKey: string | null;
  fetch?: Fetch;
}

/**
 * A language model of the AI SDK for the provider's own wire protocol: Anthropic
 * Messages, or OpenAI Chat Completions (OpenAI itself, or any server that speaks it,
 * such as vLLM, llama.cpp or Ollama).
 */
export function createModel(s: ModelSettings): LanguageModel {
  const common = { apiKey: s.apiKey ?? "none", ...(s.fetch ? { fetch: s.fetch } : {}) };
  switch (s.provider) {
    case "anthropic":
      return createAnthropic({ ...common, ...(s.baseUrl ? { baseURL: s.baseUrl } : {}) })(s.model);
    case "openai":
      return createOpenAI({ ...common, ...(s.baseUrl ? { baseURL: s.baseUrl } : {}) }).chat(
        s.model,
      );
    case "openai-compatible":
      return createOpenAICompatible({
        name: "openai-compatible",
        baseURL: s.baseUrl ?? "http://127.0.0.1:8000/v1",
        ...common,
        includeUsage: true,
      }).chatModel(s.model);
  }
}
