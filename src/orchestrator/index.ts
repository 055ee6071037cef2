/**
 * The commands that work on a whole run, as the CLI and other programs call them. A
 * trial's phases (propose, replicate, judge, record) are the orchestrator's own.
 */

export type { Emit, RunEvent } from "./events.js";
export { type Deletion, deleteRun } from "./run/delete.js";
export { type DoctorFindings, type DoctorReport, doctorRuns, sandboxReport } from "./run/doctor.js";
export type { Stops } from "./run/loop.js";
export { noiseRun } from "./run/noise.js";
export type { ToolOptions } from "./run/open.js";
export { promoteRun } from "./run/promote.js";
export { type ResumeOptions, resumeRun } from "./run/resume.js";
export type { SessionOptions, SessionResult } from "./run/session.js";
export { type StartOptions, startRun } from "./run/start.js";
export { stopOnSignals } from "./run/stop.js";
export { type RunSummary, summarize } from "./run/summary.js";
export { type TryOptions, type TryResult, tryWorkingCopy } from "./run/try.js";
export {
  initSwarm,
  promotionRule,
  remoteRef,
  type SwarmChoice,
  type SwarmInit,
} from "./swarm.js";
