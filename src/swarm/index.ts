/**
 * The swarm's coordination layer: what hosts sharing one research effort keep in one
 * PostgreSQL database (the task, hosts, every trial, claims on what is in flight, each
 * hardware class's incumbent), and the helpers around it.
 */
export type { ClaimKeys } from "./claims.js";
export { SwarmClient } from "./client.js";
export type { ConnectOptions } from "./connection.js";
export {
  isUnreachable,
  redactUrl,
  SwarmBusyError,
  SwarmUnreachableError,
  withoutPassword,
} from "./errors.js";
export { grantsSql, type SetupNames, setupSql } from "./grants.js";
export { INCUMBENT_CHANNEL } from "./incumbent.js";
export type { AdvanceRefusal, AdvanceResult, LineHead } from "./line.js";
export { type InitResult, lineDifference, MIGRATIONS, refuseOtherTask } from "./migrations.js";
export { diffHash, normalizeDiff, paramKey } from "./normalize.js";
export type { PromotionEnd, PromotionJob, PromotionRule, SwarmPromotion } from "./promotions.js";
export { answeredBeforeStop, type RetryOptions, retry } from "./retry.js";
export { type HostStatus, hostState, type SwarmProblem, type SwarmStatus } from "./status.js";
export type { HistoryPage, RecordResult } from "./trials.js";
export type * from "./types.js";
export type { IncumbentWatch, WatchOptions } from "./watch.js";
