import { writeFileSync } from "node:fs";
import { z } from "zod";
import { duration, required, section, text } from "../util/fields.js";
import { positiveInt, repeated } from "../util/flags.js";
import { sleep } from "../util/proc.js";
import { bwrapArgs } from "./confine.js";
import type { Executor, Placement, ReplicateExecution, ReplicateSpec, Slot } from "./executor.js";
import { defineExecutor, type ExecutorChoice } from "./executor.js";
import { capLog } from "./log-file.js";
import type { ProcessResult } from "./process.js";
import { BWRAP_BASE } from "./sandbox.js";
import {
  FINAL_STATES,
  findQueued,
  jobState,
  RAN_STATES,
  REQUEUE_STATES,
  sbatch,
  scancel,
} from "./slurm-cli.js";

export interface SlurmSettings {
  partition: string | null;
  account: string | null;
  qos: string | null;
  /** Overrides the job time limit (seconds); by default it is the task's timeout. */
  time: number | null;
  /** More sbatch flags, as given. */
  sbatchArgs: string[];
  /** Jobs at most in the queue or running at once. */
  jobs: number;
  pollMs: number;
  /** How often a replicate whose node failed is submitted again. */
  requeues: number;
}

const SIGNALS: Record<number, NodeJS.Signals> = {
  6: "SIGABRT",
  9: "SIGKILL",
  11: "SIGSEGV",
  15: "SIGTERM",
};

/** Quotes a value for bash, single quotes and all. */
const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** `MM:SS`, which sbatch accepts; SLURM rounds it up to whole minutes. */
function timeLimit(seconds: number): string {
  const s = Math.ceil(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * The job script: the replicate's environment written out (the job gets no other, so the
 * orchestrator's own variables and secrets stay behind), then the task's command in the
 * trial's worktree. The cluster sets CUDA_VISIBLE_DEVICES from the allocated GPUs.
 */
export function jobScript(spec: ReplicateSpec): string {
  const lines = ["#!/bin/bash", `# autoresearch replicate ${spec.name}`];
  for (const [name, value] of Object.entries(spec.env)) {
    if (name === "CUDA_VISIBLE_DEVICES") continue;
    lines.push(`export ${name}=${quote(value)}`);
  }
  lines.push(`cd ${quote(spec.cwd)} || exit 97`, ...run(spec), "");
  return lines.join("\n");
}

/**
 * The lines that run the command: in bubblewrap when the run has a sandbox and the node
 * can make one (probed there, as `auto` does at the orchestrator), else as it is, or not
 * at all when the task asks for `bwrap`. The process cap is SLURM's own cgroup on the
 * node, plus RLIMIT_NPROC for users other than root.
 */
function run(spec: ReplicateSpec): string[] {
  const plain = `exec /bin/sh -c ${quote(spec.command)}`;
  const c = spec.sandbox;
  // The job script is bash, which counts ulimit -f in KiB.
  if (!c || c.sandbox.kind === "none")
    return [`ulimit -f ${Math.ceil(spec.maxFileSize / 1024)} || exit 96`, plain];
  const { maxFileSize, maxProcesses, mode } = c.sandbox.settings;
  const probe = ["bwrap", ...BWRAP_BASE, "--", "/bin/true"];
  const boxed = ["bwrap", ...bwrapArgs(c.view), "--"].map(quote).join(" ");
  const note = "[autoresearch] bubblewrap cannot make a sandbox on $(hostname)";
  return [
    `if ${probe.map(quote).join(" ")} 2>/dev/null; then`,
    `  ulimit -f ${Math.ceil(maxFileSize / 1024)} || exit 96`,
    `  if [ "$(id -u)" != 0 ]; then cap="prlimit --nproc=${maxProcesses} --"; else cap=; fi`,
    `  exec ${boxed} $cap /bin/sh -c ${quote(spec.command)}`,
    "fi",
    ...(mode === "bwrap"
      ? [
          `echo "${note}; the task asks for sandbox: bwrap, so the replicate did not run"`,
          "exit 96",
        ]
      : [`echo "${note}; running without it"`, plain]),
  ];
}

/**
 * Runs each replicate as one SLURM batch job (sbatch, with --gres=gpu:N), follows it with
 * squeue and sacct, cancels it with scancel on timeout or stop, reads its log from the
 * shared filesystem, and submits it again when its node failed. Jobs outlive the
 * orchestrator; a restarted one attaches to them. The task must be on a filesystem that
 * the cluster's nodes share.
 */
export function createSlurmExecutor(settings: SlurmSettings): Executor {
  const slots: Slot[] = Array.from({ length: Math.max(1, settings.jobs) }, (_, i) => ({
    id: `job${i}`,
    gpus: null,
  }));
  const free = [...slots];
  const waiting: ((slot: Slot) => void)[] = [];
  const acquire = () =>
    new Promise<Slot>((resolve) => (free.length ? resolve(free.shift()!) : waiting.push(resolve)));
  const release = (slot: Slot) => {
    const next = waiting.shift();
    if (next) next(slot);
    else free.push(slot);
  };

  const submit = async (spec: ReplicateSpec): Promise<string> => {
    const script = scriptOf(spec.logPath);
    writeFileSync(script, jobScript(spec), { mode: 0o755 });
    const args = [
      `--job-name=${spec.name}`,
      `--output=${spec.logPath}`,
      "--open-mode=truncate",
      `--chdir=${spec.cwd}`,
      `--time=${timeLimit(settings.time ?? spec.timeoutMs / 1000)}`,
      "--export=NONE",
      "--no-requeue",
      ...(spec.gpus > 0 ? [`--gres=gpu:${spec.gpus}`] : []),
      ...(spec.cpus ? [`--cpus-per-task=${Math.ceil(spec.cpus)}`] : []),
      ...(settings.partition ? [`--partition=${settings.partition}`] : []),
      ...(settings.account ? [`--account=${settings.account}`] : []),
      ...(settings.qos ? [`--qos=${settings.qos}`] : []),
      ...settings.sbatchArgs,
    ];
    // A controller that is briefly unreachable is not a reason to give up the run.
    for (let attempt = 1; ; attempt++) {
      try {
        return await sbatch(args, script);
      } catch (error) {
        if (
          attempt >= 3 ||
          /invalid|not available|unrecognized|unknown/i.test((error as Error).message)
        )
          throw error;
        await sleep(2000 * attempt);
      }
    }
  };

  /**
   * Follows a job to its end, cancelling it on stop or past its timeout. `submittedAt`:
   * when this orchestrator submitted it (null for a job an earlier one submitted).
   */
  const follow = async (
    first: string,
    spec: ReplicateSpec,
    slot: Slot,
    submittedAt: number | null,
  ): Promise<ProcessResult> => {
    let jobId = first;
    let submitted = submittedAt ?? Date.now();
    let after = submittedAt;
    let runningSince: number | null = null;
    let cancelled: "stop" | "timeout" | null = null;
    let requeues = 0;
    let unknown = 0;
    for (;;) {
      if (spec.signal.aborted && !cancelled) {
        cancelled = "stop";
        await scancel(jobId);
      }
      // SLURM enforces the time limit itself; this only catches a job it let run on.
      if (
        runningSince &&
        !cancelled &&
        Date.now() - runningSince > spec.timeoutMs + spec.killGraceMs + 60_000
      ) {
        cancelled = "timeout";
        await scancel(jobId);
      }
      const st = await jobState(jobId);
      // A job can start and end between two polls, or while no orchestrator followed it
      // (attach): the scheduler's record says whether and when it ran.
      const ran = st.state === "RUNNING" || st.startedAt !== null || RAN_STATES.has(st.state);
      if (ran && runningSince === null) {
        // The controller's clock may differ from this machine's, and keeps whole seconds:
        // a job this orchestrator submitted cannot have started before it was submitted.
        runningSince = Math.min(Math.max(st.startedAt ?? Date.now(), after ?? 0), Date.now());
        spec.onRunning?.(runningSince);
      }
      unknown = st.state === "UNKNOWN" ? unknown + 1 : 0;
      if (FINAL_STATES.has(st.state) || unknown >= 5) {
        if (REQUEUE_STATES.has(st.state) && !cancelled && requeues < settings.requeues) {
          requeues++;
          submitted = Date.now();
          after = submitted;
          jobId = await submit(spec);
          runningSince = null;
          spec.onStart({ slot, jobId } satisfies Placement);
          continue;
        }
        const log = capLog(spec.logPath, spec.logLimit);
        const state = unknown >= 5 ? "UNKNOWN" : st.state;
        return {
          pid: null,
          exitCode: st.exitCode,
          signal: st.signal ? (SIGNALS[st.signal] ?? "SIGTERM") : null,
          timedOut: state === "TIMEOUT" || cancelled === "timeout",
          aborted: cancelled === "stop",
          durationMs: Math.max(0, Date.now() - (runningSince ?? submitted)),
          endedAt: Date.now(),
          logBytes: log.bytes,
          truncated: log.truncated,
          spawnError: null,
          jobState: state,
        };
      }
      await sleep(settings.pollMs);
    }
  };

  return {
    kind: "slurm",
    slots,
    setAside: () => [],
    async run(spec) {
      const slot = await acquire();
      try {
        // A refused submission (bad partition, controller down) stops the run with SLURM's message.
        const submittedAt = Date.now();
        const jobId = await submit(spec);
        spec.onStart({ slot, jobId });
        return {
          slot,
          process: await follow(jobId, spec, slot, submittedAt),
        } satisfies ReplicateExecution;
      } finally {
        release(slot);
      }
    },
    async attach(jobId, spec) {
      const slot = await acquire();
      try {
        spec.onStart({ slot, jobId });
        return { slot, process: await follow(jobId, spec, slot, null) };
      } finally {
        release(slot);
      }
    },
    async alive(jobId) {
      return !FINAL_STATES.has((await jobState(jobId)).state);
    },
    cancel: scancel,
    findJob: (name, logPath) => findQueued(name, scriptOf(logPath)),
  };
}

const scriptOf = (logPath: string) => `${logPath.replace(/\.log$/, "")}.sbatch`;

/** The `slurm:` section of the task file. */
const slurmSection = section({
  partition: text("a SLURM partition").optional(),
  account: text("a SLURM account").optional(),
  qos: text("a SLURM quality of service").optional(),
  time: duration("the job time limit; default: the task's timeout").optional(),
  sbatch_args: z.array(z.string(), { error: required("a list of extra sbatch flags") }).default([]),
  poll: duration("how often job states are read").default(2),
  requeues: z.number().int("must be a whole number").min(0, "must be ≥ 0").default(2),
});

interface SlurmChoice extends ExecutorChoice {
  kind: "slurm";
  /** Jobs at most queued or running at once. */
  jobs?: number;
  partition?: string;
  account?: string;
  qos?: string;
  sbatchArgs?: string[];
}

/** The SLURM kind: each replicate one job; flags override the task file's `slurm:` section. */
export const slurmExecutor = defineExecutor({
  name: "slurm",
  settings: slurmSection,
  flags: [
    {
      flags: "--slots <n>",
      description: "local CPU slots, or SLURM jobs at once",
      parse: positiveInt,
    },
    { flags: "--partition <name>", description: "SLURM partition" },
    { flags: "--account <name>", description: "SLURM account" },
    { flags: "--qos <name>", description: "SLURM quality of service" },
    {
      flags: "--sbatch-arg <flag>",
      description: "an extra sbatch flag (repeatable)",
      parse: repeated,
    },
  ],
  choose(values): SlurmChoice {
    const given = (name: string) => (values[name] !== undefined ? { [name]: values[name] } : {});
    return {
      kind: "slurm",
      ...(values.slots !== undefined ? { jobs: values.slots as number } : {}),
      ...given("partition"),
      ...given("account"),
      ...given("qos"),
      ...(values.sbatchArg !== undefined ? { sbatchArgs: values.sbatchArg as string[] } : {}),
    };
  },
  create(choice, { settings }) {
    return createSlurmExecutor({
      partition: choice.partition ?? settings.partition,
      account: choice.account ?? settings.account,
      qos: choice.qos ?? settings.qos,
      time: settings.time,
      sbatchArgs: [...settings.sbatchArgs, ...(choice.sbatchArgs ?? [])],
      jobs: choice.jobs ?? 4,
      pollMs: settings.poll * 1000,
      requeues: settings.requeues,
    });
  },
});
