#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { EXIT, FatalError } from "../errors.js";
import { SlurmError } from "../executors/slurm-cli.js";
import { ledgerRefusal } from "../ledger/check.js";
import { hideSecretsFromProc } from "../util/environ.js";
import { GitError } from "../workspace/git.js";
import { registerDelete } from "./delete.js";
import { registerDemo } from "./demo.js";
import { registerDoctor } from "./doctor.js";
import { registerImport } from "./import.js";
import { registerInit } from "./init.js";
import { registerLadder } from "./ladder.js";
import { registerReport } from "./report.js";
import { registerResume } from "./resume.js";
import { registerRun } from "./run.js";
import { registerServe } from "./serve.js";
import { registerStatus } from "./status.js";
import { registerSwarm } from "./swarm.js";
import { registerTry } from "./try.js";

// Before anything starts: a process of the same user must not read the keys in /proc.
hideSecretsFromProc();

const program = new Command("autoresearch")
  .description("closed-loop research: propose a change, run it, judge it, keep or discard, repeat")
  .version("0.1.0")
  // The mistake and its "did you mean" stay on screen; the whole help would push them off.
  .showHelpAfterError("(add --help to see the options)")
  .exitOverride();

registerInit(program);
registerRun(program);
registerResume(program);
registerStatus(program);
registerDemo(program);
registerTry(program);
registerLadder(program);
registerDoctor(program);
registerReport(program);
registerServe(program);
registerImport(program);
registerDelete(program);
registerSwarm(program);

/** Commands that drive trials: a closed reader must not abandon one half-way. */
const DRIVING = new Set(["run", "resume", "try", "demo", "promote", "noise"]);

// A reader that closed early (`autoresearch status | head`) is not an error. A run whose
// reader went away goes on without printing; its records say what happened.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
  if (!DRIVING.has(process.argv[2] ?? "")) process.exit(0);
  process.stdout.write = (() => true) as typeof process.stdout.write;
});
// Nor on stderr, where a stop is said: the run still ends cleanly, and a failing command
// keeps its own exit status.
process.stderr.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
  process.stderr.write = (() => true) as typeof process.stderr.write;
});

try {
  await program.parseAsync(process.argv);
} catch (caught) {
  // Damage that opening the ledger did not find (in a table it had not read yet), or a write
  // its file or folder refused.
  const error = ledgerRefusal(caught) ?? caught;
  if (error instanceof CommanderError) {
    // Help and version are not errors; commander has already printed the problem otherwise.
    process.exitCode = error.exitCode === 0 ? 0 : EXIT.usage;
  } else if (error instanceof FatalError) {
    process.stderr.write(`autoresearch: ${error.message}\n`);
    process.exitCode = error.exitCode;
  } else if (environmentProblem(error)) {
    process.stderr.write(`autoresearch: ${environmentProblem(error)}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`autoresearch: unexpected error: ${(error as Error).stack ?? error}\n`);
    process.exitCode = 1;
  }
}

/**
 * Failures of the machine rather than of the harness: said plainly, with what to do.
 * The ledger is a SQLite database and every change to it a transaction, so a failed
 * write leaves it as it was before, and `resume` goes on from there.
 */
function environmentProblem(error: unknown): string | null {
  if (!(error instanceof Error)) return null;
  const code = (error as { code?: unknown }).code;
  const message = error.message;
  const full = /no space left on device/i.test(message ?? "");
  if (code === "ENOSPC" || code === "SQLITE_FULL" || full)
    return `the disk is full (${message}); nothing recorded is lost: free some space, then \`autoresearch resume\``;
  if (code === "SQLITE_BUSY")
    return `the ledger stayed locked by another process (${message}); find it with \`fuser .autoresearch/ledger.db\`, then \`autoresearch resume\``;
  if (error instanceof GitError)
    return `${message}; nothing recorded is lost: fix the repository, then \`autoresearch resume\``;
  if (error instanceof SlurmError)
    return `SLURM refused: ${message}; nothing recorded is lost: fix the cause (\`sinfo\` lists the partitions), then \`autoresearch resume\` with the run's --tag: it submits with the flags the run was started with unless given \`--executor slurm\` and new ones, or \`--executor local\` to run on this machine`;
  return null;
}
