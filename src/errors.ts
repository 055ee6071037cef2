/**
 * Operator mistakes (bad task file, unknown flag, dirty repository) are errors with a
 * stable exit code. Outcomes of experiments and researchers are never errors: they are
 * values recorded in the ledger.
 */
export class FatalError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export const EXIT = {
  usage: 2,
  task: 3,
  workspace: 4,
  ledger: 5,
  setup: 6,
  researcher: 7,
  /** A stop rule ended the run (--max-failures): something to fix, not a person's stop. */
  stopRule: 8,
  /** The swarm's database refused this host or cannot be reached after the retries. */
  swarm: 9,
  interrupted: 130,
} as const;

/**
 * A person stopped the command (Ctrl-C) before it had begun anything worth keeping: what
 * it had made is undone, and it ends as a stop does (130).
 */
export class StoppedError extends FatalError {
  constructor(message: string) {
    super(message, EXIT.interrupted);
  }
}

/** A bad command-line flag or argument. */
export class UsageError extends FatalError {
  constructor(message: string) {
    super(message, EXIT.usage);
  }
}

/** The task file is missing or invalid; the message names the field and the value. */
export class TaskFileError extends FatalError {
  constructor(message: string) {
    super(message, EXIT.task);
  }
}

/** The task's git repository is not in a state the harness can work from. */
export class WorkspaceError extends FatalError {
  constructor(message: string) {
    super(message, EXIT.workspace);
  }
}

/** The ledger cannot be opened or is from a newer version. */
export class LedgerError extends FatalError {
  constructor(message: string) {
    super(message, EXIT.ledger);
  }
}

/** The task's setup command failed: no trial can run until it is fixed. */
export class SetupError extends FatalError {
  constructor(message: string) {
    super(message, EXIT.setup);
  }
}

/** The researcher cannot work: its provider is unreachable, its program is not installed. */
export class ResearcherError extends FatalError {
  constructor(message: string) {
    super(message, EXIT.researcher);
  }
}

/**
 * The swarm cannot take this host as it is: another task, a host not joined, a database
 * without the swarm's schema or one from a newer version.
 */
export class SwarmError extends FatalError {
  constructor(message: string) {
    super(message, EXIT.swarm);
  }
}
