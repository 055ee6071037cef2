import type { z } from "zod";
import { UsageError } from "../errors.js";
import { type KeyedFetch, recordingFetch, replayingFetch } from "../providers/record.js";
import { count, duration, oneOf, section } from "../util/fields.js";
import { type Flag, type FlagValues, flagName } from "../util/flags.js";
import { claudeCodeResearcher, codexResearcher } from "./coding-agent.js";
import { commandResearcher } from "./command.js";
import type { researcherFields } from "./fields.js";
import { anthropicResearcher, openaiCompatibleResearcher, openaiResearcher } from "./llm.js";
import { mutateResearcher } from "./mutate.js";
import type { Researcher, ResearcherKind, SharedTraffic } from "./researcher.js";
import { tuneResearcher } from "./tune.js";

/** Every researcher kind; the first is the default. A new kind is its module and one line here. */
export const RESEARCHERS: readonly ResearcherKind[] = [
  mutateResearcher,
  tuneResearcher,
  anthropicResearcher,
  openaiResearcher,
  openaiCompatibleResearcher,
  claudeCodeResearcher,
  codexResearcher,
  commandResearcher,
];

const names = RESEARCHERS.map((k) => k.name) as [string, ...string[]];

/**
 * The task file's `researcher:` section: which kind `run` uses by default, the fields
 * every kind reads, and the fields of each kind.
 */
export const researcherSettings = section({
  kind: oneOf(names).optional(),
  history_tokens: count("tokens of run history given to the researcher").default(24_000),
  timeout: duration("the longest a proposal may take").default(1800),
  // The shared fields are typed here; a kind's own fields are validated as well, and
  // the kind reads them from its config.
  ...(Object.assign({}, ...RESEARCHERS.map((k) => k.settings)) as typeof researcherFields),
});

export type ResearcherSettings = z.output<typeof researcherSettings>;

/**
 * A run's researcher settings: the task file's, overridden by flags. Stored with the run;
 * never a key. A kind's own settings (those no other kind reads) are there by their
 * camelCase names, validated by its schema, for the kind to read.
 */
export type ResearcherConfig = Omit<ResearcherSettings, "kind"> & {
  kind: string;
  [setting: string]: unknown;
};

/** `--researcher` and the values of the kinds' own flags, by camelCase name (`--base-url` → baseUrl). */
export interface ResearcherFlags extends FlagValues {
  researcher?: string;
  model?: string;
  baseUrl?: string;
}

/** Where provider traffic is recorded to or replayed from. */
export interface Traffic {
  record?: string;
  replay?: string;
}

export function researcherKind(name: string): ResearcherKind {
  const kind = RESEARCHERS.find((k) => k.name === name);
  if (!kind)
    throw new UsageError(
      `--researcher: unknown researcher "${name}"; available: ${names.join(", ")}`,
    );
  return kind;
}

/** The flags of every kind, each name once. */
export function researcherFlags(): Flag[] {
  const flags: Flag[] = [];
  for (const kind of RESEARCHERS)
    for (const flag of kind.flags)
      if (!flags.some((f) => flagName(f) === flagName(flag))) flags.push(flag);
  return flags;
}

/**
 * Refuses a kind's own flag that no researcher of the run reads (`--sampler` without
 * `tune`): silently ignored, it would leave the user believing it took effect.
 */
export function checkFlagsUsed(kinds: string[], flags: FlagValues): void {
  for (const kind of RESEARCHERS)
    for (const flag of kind.flags) {
      const name = flagName(flag);
      if (flags[name] === undefined || name === "model" || name === "baseUrl") continue;
      const readers = RESEARCHERS.filter((k) => k.flags.some((f) => flagName(f) === name));
      if (readers.some((k) => kinds.includes(k.name))) continue;
      const option = flag.flags.split(" ")[0];
      throw new UsageError(
        `${option} is a setting of the ${readers.map((k) => k.name).join(" or ")} researcher, which this run does not use (${kinds.join(", ")}); add --researcher ${readers[0]!.name}`,
      );
    }
}

/**
 * The task file's researcher settings, overridden by the environment
 * (AUTORESEARCH_RESEARCHER, AUTORESEARCH_MODEL, AUTORESEARCH_BASE_URL), overridden by flags.
 * The providers' own ANTHROPIC_BASE_URL and OPENAI_BASE_URL apply when no base URL is set.
 */
export function researcherConfig(
  task: { file: string; researcher: ResearcherSettings },
  flags: ResearcherFlags,
  env = process.env,
): ResearcherConfig {
  const settings = task.researcher;
  const kind = researcherKind(
    flags.researcher ?? env.AUTORESEARCH_RESEARCHER ?? settings.kind ?? names[0],
  );
  // A flag the kind declares overrides the task file's setting of the same name.
  const given = Object.fromEntries(
    kind.flags
      .map(flagName)
      .flatMap((name) => (flags[name] === undefined ? [] : [[name, flags[name]]])),
  );
  const config: ResearcherConfig = {
    ...settings,
    ...given,
    kind: kind.name,
    model: flags.model ?? env.AUTORESEARCH_MODEL ?? settings.model,
    baseUrl: flags.baseUrl ?? env.AUTORESEARCH_BASE_URL ?? settings.baseUrl,
  };
  return kind.configure ? kind.configure(config, task.file) : config;
}

/** Checks once per kind and settings, before the baseline, that each researcher can work. */
export async function preflight(
  configs: ResearcherConfig[],
  traffic: SharedTraffic,
  env = process.env,
): Promise<void> {
  const seen = new Set<string>();
  for (const config of configs) {
    const key = JSON.stringify(config);
    if (seen.has(key)) continue;
    seen.add(key);
    await researcherKind(config.kind).preflight?.(config, traffic, env);
  }
}

/** Refuses a spending limit that cannot be checked: the model's price must be known. */
export function checkBudget(config: ResearcherConfig, maxUsd: number | null): void {
  if (maxUsd !== null) researcherKind(config.kind).checkBudget?.(config);
}

/** The fetch all model researchers of a session share: recording, replaying, or the real one. */
export function trafficFetch(traffic: Traffic): KeyedFetch | undefined {
  if (traffic.replay) return replayingFetch(traffic.replay);
  if (traffic.record) return recordingFetch(traffic.record);
  return undefined;
}

/**
 * The researcher for `config`. Keys come from the environment only; a missing one is an
 * error now, not in the middle of a run. `traffic` replays or records provider traffic.
 */
export function createResearcher(
  config: ResearcherConfig,
  traffic: SharedTraffic = {},
  env = process.env,
): Researcher {
  return researcherKind(config.kind).create(config, traffic, env);
}
