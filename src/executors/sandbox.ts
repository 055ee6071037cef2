import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { SetupError, TaskFileError } from "../errors.js";
import { count, required, section, size, strict, text } from "../util/fields.js";
import { expandHome, within } from "../util/fs.js";

export const SANDBOX_MODES = ["auto", "bwrap", "none"] as const;
export type SandboxMode = (typeof SANDBOX_MODES)[number];

/** A path outside the worktree that sandboxed commands see at the same place. */
export interface Bind {
  path: string;
  writable: boolean;
}

const mode = z.enum(SANDBOX_MODES, {
  error: required("one of auto (bubblewrap where it works), bwrap, none"),
});

/** `~/x` → the home folder's x; anything else must be absolute. */
const hostPath = text("an absolute path or one under ~/").transform((p, ctx) => {
  const path = expandHome(p);
  if (!isAbsolute(path)) {
    ctx.addIssue({ code: "custom", message: "must be an absolute path or start with ~/" });
    return z.NEVER;
  }
  return resolve(path);
});

export const bind = z
  .union(
    [
      hostPath,
      strict({
        path: hostPath,
        writable: z.boolean({ error: required("true or false") }).default(false),
      }),
    ],
    { error: required("an absolute path (or one under ~/, quoted), or { path, writable }") },
  )
  .transform((b): Bind => (typeof b === "string" ? { path: b, writable: false } : b));

/** The task file's `sandbox:`: a mode alone, or the mode with what sandboxed replicates may reach. */
export const sandboxSettings = z.preprocess(
  (v) => (typeof v === "string" ? { mode: v } : v),
  section({
    mode: mode.default("auto"),
    /** Replicates have no network unless this is true (researchers always have it). */
    network: z.boolean({ error: required("true or false") }).default(false),
    /** Paths replicates see besides the task: the home folder is empty except these. */
    binds: z
      .array(bind, { error: required("a list of paths") })
      .default([])
      .superRefine((binds, ctx) => {
        binds.forEach((b, i) => {
          if (!existsSync(b.path))
            ctx.addIssue({
              code: "custom",
              path: [i],
              message: "does not exist; create it or remove it",
            });
        });
      }),
    max_processes: count("processes and threads one replicate may have at once").default(8192),
    max_file_size: size.default(16 * 1024 ** 3),
  }),
);
export type SandboxSettings = z.output<typeof sandboxSettings>;

/** How the number of a sandboxed command's processes is held down. */
export type ProcessCap =
  | { kind: "cgroup"; parent: string }
  | { kind: "rlimit" }
  | { kind: "none"; why: string };

/** What bounds the run's replicates and researchers, settled once per orchestrator. */
export interface Sandbox {
  kind: "bwrap" | "none";
  settings: SandboxSettings;
  cap: ProcessCap;
  /** One line for the run's header and `doctor`: what applies, or why nothing does. */
  summary: string;
}

/**
 * The smallest sandbox: namespaces of its own, no capabilities, the file system read-only.
 * The probe runs in it, and every sandboxed command starts from it.
 */
export const BWRAP_BASE = [
  "--unshare-all",
  "--die-with-parent",
  "--cap-drop",
  "ALL",
  "--ro-bind",
  "/",
  "/",
  "--dev",
  "/dev",
  "--proc",
  "/proc",
];

let probed: { ok: true } | { ok: false; why: string } | undefined;

/** Whether bubblewrap can make a sandbox on this machine, and why not (asked once). */
export function probeBwrap(): { ok: true } | { ok: false; why: string } {
  if (probed) return probed;
  const r = spawnSync("bwrap", [...BWRAP_BASE, "--", "/bin/true"], {
    encoding: "utf8",
    timeout: 10_000,
  });
  const missing = (r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
  probed = missing
    ? { ok: false, why: "bubblewrap is not installed (Debian, Ubuntu: apt install bubblewrap)" }
    : r.status === 0
      ? { ok: true }
      : { ok: false, why: bwrapFailure(r.stderr || r.error?.message || `exit ${r.status}`) };
  return probed;
}

function bwrapFailure(stderr: string): string {
  const said = stderr.trim().split("\n")[0] ?? "";
  const off = (file: string) => {
    try {
      return readFileSync(file, "utf8").trim() === "0";
    } catch {
      return false;
    }
  };
  if (
    off("/proc/sys/kernel/unprivileged_userns_clone") ||
    off("/proc/sys/user/max_user_namespaces")
  )
    return `user namespaces are disabled on this machine (${said}); enable them with sysctl kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0`;
  return `bubblewrap cannot create namespaces here (${said}); in a container, the container must allow them (for example, docker run --security-opt seccomp=unconfined --cap-add SYS_ADMIN)`;
}

/**
 * The run's sandbox: `mode` (the task file's, or `override` from --sandbox) settled
 * against what this machine allows. Throws a SetupError when `bwrap` is asked for and
 * cannot work here, naming why; `auto` falls back to none with the reason in `summary`.
 */
export function resolveSandbox(
  settings: SandboxSettings,
  override?: SandboxMode,
  /** The harness's state folder, which no bind may show. */
  state?: string,
  /** Where `override` came from, as the summary says it. */
  overrideFrom = "--sandbox",
): Sandbox {
  const wanted = override ?? settings.mode;
  const s = { ...settings, mode: wanted };
  for (const b of s.binds) {
    // By where the path leads: a link must not carry the harness's folder in.
    const real = realOf(b.path);
    if (state && (within(real, realOf(state)) || within(realOf(state), real)))
      throw new TaskFileError(
        `sandbox.binds: ${b.path} would show the harness's own folder ${state} (the ledger, other trials) to replicates; bind something narrower`,
      );
    if (b.writable && real === "/")
      throw new TaskFileError(
        "sandbox.binds: / cannot be writable; bind the folders a replicate writes",
      );
  }
  const none = (why: string): Sandbox => ({
    kind: "none",
    settings: s,
    cap: { kind: "none", why },
    summary: `sandbox: none (${why})`,
  });
  if (wanted === "none")
    return none(override ? `${overrideFrom} none` : "sandbox: none in the task file");
  const probe = probeBwrap();
  if (!probe.ok) {
    if (wanted === "bwrap")
      throw new SetupError(
        `sandbox: bwrap was asked for but ${probe.why}; or run with --sandbox none`,
      );
    return {
      ...none(`${probe.why}; replicates run unsandboxed`),
      summary: `warning: sandbox: none (${probe.why}; replicates run unsandboxed)`,
    };
  }
  const cap = processCap();
  const limits = [
    s.network ? "network on" : "no network",
    cap.kind === "none"
      ? `no process cap: ${cap.why}`
      : `at most ${s.maxProcesses} processes (${cap.kind})`,
    `files up to ${formatBytes(s.maxFileSize)}`,
    ...(s.binds.length
      ? [`binds: ${s.binds.map((b) => `${b.path}${b.writable ? " (writable)" : ""}`).join(", ")}`]
      : []),
  ];
  return { kind: "bwrap", settings: s, cap, summary: `sandbox: bubblewrap (${limits.join(", ")})` };
}

const realOf = (path: string) => {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
};

/** In the unit it was most likely written in: 16GiB and 1MB both read back as given. */
function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ["GiB", 1024 ** 3],
    ["GB", 1e9],
    ["MiB", 1024 ** 2],
    ["MB", 1e6],
    ["KiB", 1024],
    ["KB", 1e3],
  ] as const)
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  return `${bytes} bytes`;
}

let cap: ProcessCap | undefined;

/**
 * How sandboxed processes are counted: a pids cgroup where one can be made and joined
 * (root's usual case: RLIMIT_NPROC does not bind root), else RLIMIT_NPROC inside the
 * sandbox's user namespace for other users, else nothing, with the reason.
 */
function processCap(): ProcessCap {
  if (cap) return cap;
  const parent = pidsCgroup();
  if (parent) {
    removeStale(parent);
    const dir = join(parent, `autoresearch-probe-${process.pid}`);
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, "pids.max"), "16");
      const joined = spawnSync("/bin/sh", ["-c", 'echo $$ > "$0"', join(dir, "cgroup.procs")]);
      if (joined.status === 0) cap = { kind: "cgroup", parent };
    } catch {
    } finally {
      try {
        rmdirSync(dir);
      } catch {}
    }
  }
  cap ??=
    process.getuid?.() === 0
      ? {
          kind: "none",
          why: "running as root without a writable pids cgroup, and RLIMIT_NPROC does not bind root",
        }
      : { kind: "rlimit" };
  return cap;
}

/**
 * Cgroups of orchestrators that were killed: their processes died with them (bubblewrap
 * dies with its parent), so the folders are empty and only need removing. Looked for at
 * the start and after each sandboxed command, since the last of a killed sandbox's
 * processes may still be ending when the next orchestrator starts.
 */
export function removeStale(parent: string): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = /^autoresearch-(?:probe-)?(\d+)(?:-\d+)?$/.exec(name)?.[1];
    if (!pid || Number(pid) === process.pid || existsSync(`/proc/${pid}`)) continue;
    try {
      rmdirSync(join(parent, name));
    } catch {}
  }
}

/** This process's folder in the pids controller's hierarchy (cgroup v1, or v2 with pids), or null. */
function pidsCgroup(): string | null {
  let lines: string[];
  try {
    lines = readFileSync("/proc/self/cgroup", "utf8").trim().split("\n");
  } catch {
    return null;
  }
  for (const line of lines) {
    const [, controllers, path] = line.split(":");
    if (controllers?.split(",").includes("pids")) return join("/sys/fs/cgroup/pids", path ?? "");
  }
  const unified = lines.find((l) => l.startsWith("0::"));
  if (!unified) return null;
  const dir = join("/sys/fs/cgroup", unified.slice(3));
  try {
    return readFileSync(join(dir, "cgroup.subtree_control"), "utf8").split(/\s+/).includes("pids")
      ? dir
      : null;
  } catch {
    return null;
  }
}

/** How programs say a write passed RLIMIT_FSIZE (Python, C, Node, the shell on SIGXFSZ). */
const FILE_TOO_LARGE = /File too large|SIGXFSZ|EFBIG|File size limit exceeded/;

/** What a crashed replicate's log says that the sandbox may have caused, and the fix. */
const HINTS: [RegExp, string][] = [
  [
    /Read-only file system/,
    "in the sandbox only the worktree, /tmp and the trial's folder are writable (a folder elsewhere: sandbox.binds with writable: true)",
  ],
  [FILE_TOO_LARGE, "a file reached sandbox.max_file_size"],
  [
    /Cannot fork|can't start new thread|Resource temporarily unavailable/,
    "the replicate may have reached sandbox.max_processes (threads, and bubblewrap's own two processes, count too)",
  ],
  [
    /Network is unreachable|Temporary failure in name resolution|Name or service not known|Connection refused/,
    "replicates have no network unless sandbox.network is true",
  ],
  [
    /No such file or directory|can't open file|not found/,
    "if the program reads files in $HOME or /tmp: they start empty in the sandbox; list them in sandbox.binds",
  ],
];

/**
 * The hint for a replicate that crashed, or null when its log suggests none. Without the
 * sandbox only the file-size limit applies, which holds there too.
 */
export function sandboxHint(log: string, sandboxed: boolean): string | null {
  const tail = log.slice(-20_000);
  if (!sandboxed)
    return FILE_TOO_LARGE.test(tail)
      ? "a file reached sandbox.max_file_size, which applies without the sandbox too"
      : null;
  return HINTS.find(([pattern]) => pattern.test(tail))?.[1] ?? null;
}
