export type ConstraintOp = "<" | "<=" | ">" | ">=" | "==" | "!=";

/** A bound on a metric, written in the task file as "peak_vram_mb < 80000". */
export interface Constraint {
  text: string;
  metric: string;
  op: ConstraintOp;
  value: number;
}

const FORM =
  /^\s*([A-Za-z_][\w.-]*)\s*(<=|>=|==|!=|<|>)\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*$/;

/** Parses "name op number"; null when the text has another shape. */
export function parseConstraint(text: string): Constraint | null {
  const match = FORM.exec(text);
  if (!match) return null;
  return {
    text: text.trim(),
    metric: match[1]!,
    op: match[2] as ConstraintOp,
    value: Number(match[3]),
  };
}

function holds(actual: number, op: ConstraintOp, bound: number): boolean {
  switch (op) {
    case "<":
      return actual < bound;
    case "<=":
      return actual <= bound;
    case ">":
      return actual > bound;
    case ">=":
      return actual >= bound;
    case "==":
      return actual === bound;
    case "!=":
      return actual !== bound;
  }
}

/**
 * Returns one message per violated constraint. A metric the program did not report
 * counts as a violation: a program must not pass a bound by going quiet about it.
 */
export function violations(metrics: Record<string, number>, constraints: Constraint[]): string[] {
  const out: string[] = [];
  for (const c of constraints) {
    const actual = metrics[c.metric];
    if (actual === undefined) out.push(`${c.text}: ${c.metric} was not reported`);
    else if (!holds(actual, c.op, c.value)) out.push(`${c.text}: ${c.metric} was ${actual}`);
  }
  return out;
}
