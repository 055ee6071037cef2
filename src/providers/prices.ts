/** US dollars per million tokens, input and output. */
export interface Price {
  input: number;
  output: number;
}

/**
 * List prices of common models. Model ids with a date suffix match their family by the
 * longest prefix (claude-sonnet-4-5-20250929 → claude-sonnet-4-5). The task file's
 * `researcher.prices` overrides or extends this table.
 */
export const PRICES: Readonly<Record<string, Price>> = {
  "claude-opus-4-1": { input: 15, output: 75 },
  "claude-opus-4": { input: 15, output: 75 },
  "claude-sonnet-4-5": { input: 3, output: 15 },
  "claude-sonnet-4": { input: 3, output: 15 },
  "claude-haiku-4-5": { input: 1, output: 5 },
  "claude-3-5-haiku": { input: 0.8, output: 4 },
  "gpt-5": { input: 1.25, output: 10 },
  "gpt-5-mini": { input: 0.25, output: 2 },
  "gpt-5-nano": { input: 0.05, output: 0.4 },
  "gpt-4.1": { input: 2, output: 8 },
  "gpt-4.1-mini": { input: 0.4, output: 1.6 },
  "gpt-4o": { input: 2.5, output: 10 },
  "gpt-4o-mini": { input: 0.15, output: 0.6 },
  o3: { input: 2, output: 8 },
  "o4-mini": { input: 1.1, output: 4.4 },
};

/** The price of `model`, from the overrides first, or null if unknown. */
export function priceOf(model: string, overrides: Record<string, Price> = {}): Price | null {
  const table = { ...PRICES, ...overrides };
  if (table[model]) return table[model];
  let best: string | null = null;
  for (const name of Object.keys(table)) {
    if (model.startsWith(`${name}-`) && (best === null || name.length > best.length)) best = name;
  }
  return best ? table[best]! : null;
}

/** The cost of a call in dollars, or null when the price is unknown. */
export function costOf(
  model: string,
  tokensIn: number,
  tokensOut: number,
  overrides: Record<string, Price> = {},
): number | null {
  const price = priceOf(model, overrides);
  if (!price) return null;
  return (tokensIn * price.input + tokensOut * price.output) / 1e6;
}
