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

/** Where each provider's API is when no base URL is given (the SDKs' defaults). */
const DEFAULT_BASE_URLS: Record<Provider, string> = {
  anthropic: "https://api.anthropic.com/v1",
  openai: "https://api.openai.com/v1",
  "openai-compatible": "http://127.0.0.1:8000/v1",
};

/** The base URL calls go to: the given one, the provider's own variable, or its default. */
export function baseUrlOf(
  provider: Provider,
  baseUrl: string | null,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const own =
    provider === "anthropic"
      ? env.ANTHROPIC_BASE_URL
      : provider === "openai"
        ? env.OPENAI_BASE_URL
        : undefined;
  return (baseUrl ?? own ?? DEFAULT_BASE_URLS[provider]).replace(/\/+$/, "");
}

/** What a look at the provider's API found. */
export type Probe = { ok: true } | { ok: false; keyRefused: boolean; reason: string };

/**
 * Asks the provider's model list, to learn before a run whether its API answers and
 * takes the key. Any answer but 401 or 403 means reachable: some servers list no models.
 */
export async function probeProvider(
  provider: Provider,
  baseUrl: string,
  apiKey: string | null,
  timeoutMs = 10_000,
): Promise<Probe> {
  const headers: Record<string, string> =
    provider === "anthropic"
      ? { "x-api-key": apiKey ?? "", "anthropic-version": "2023-06-01" }
      : apiKey
        ? { authorization: `Bearer ${apiKey}` }
        : {};
  try {
    const res = await fetch(`${baseUrl}/models`, {
      headers,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body?.cancel();
    if (res.status === 401 || res.status === 403)
      return { ok: false, keyRefused: true, reason: `HTTP ${res.status}` };
    return { ok: true };
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return {
      ok: false,
      keyRefused: false,
      reason: cause?.code ?? cause?.message ?? (error as Error).message,
    };
  }
}
