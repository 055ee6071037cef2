import { existsSync, lstatSync, mkdirSync, readlinkSync, rmdirSync, writeFileSync } from "node:fs";
import { isAbsolute, join, relative, sep } from "node:path";
import { within } from "../util/fs.js";
import { type Bind, BWRAP_BASE, removeStale, type Sandbox } from "./sandbox.js";

/**
 * What one sandboxed command sees of the file system besides a read-only `/`, a private
 * `/tmp` and an empty home folder.
 */
export interface View {
  /** Writable at their own path: the worktree, the trial's folder, compile caches. */
  writable: string[];
  /** Readable at their own path although under something hidden (the task's checkout in $HOME). */
  readable: string[];
  /** Replaced by empty folders (the harness's state folder): other trials, the ledger. */
  hidden: string[];
  binds: Bind[];
  network: boolean;
  /** Files shown read-only inside a writable folder: the harness's records beside a result file. */
  frozen?: string[];
}

/** The run's sandbox and what one command sees through it. */
export interface Confinement {
  sandbox: Sandbox;
  view: View;
}

/** A command ready to spawn, and what to clean up once it and its processes are gone. */
export interface Launch {
  file: string;
  args: string[];
  done(): void;
}

/** GPU device nodes, passed through where they exist (`-try`): CUDA needs them all. */
const GPU_NODES = [
  "/dev/nvidiactl",
  "/dev/nvidia-uvm",
  "/dev/nvidia-uvm-tools",
  "/dev/nvidia-modeset",
  "/dev/nvidia-caps",
  "/dev/dri",
  ...Array.from({ length: 32 }, (_, i) => `/dev/nvidia${i}`),
];

/** Files only root may read, blanked: a replicate runs as root without capabilities. */
const SECRET_FILES = ["/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-"];

/**
 * PATH entries under a hidden folder or /tmp (a conda or pyenv install in $HOME) stay
 * readable, by their first folder there, so the task's interpreter is still found.
 */
function toolFolders(hidden: string[], path = process.env.PATH ?? ""): string[] {
  const found = new Set<string>();
  for (const entry of path.split(":")) {
    if (!isAbsolute(entry)) continue;
    for (const h of hidden) {
      if (entry === h || !within(entry, h)) continue;
      found.add(join(h, relative(h, entry).split(sep)[0]!));
    }
  }
  return [...found];
}

/**
 * bubblewrap's arguments for `view`: namespaces of its own (network too unless allowed),
 * no capabilities, the whole file system read-only, then mounts from the outermost in,
 * so that a folder hidden by an empty one can be shown again inside it.
 */
export function bwrapArgs(view: View, home = process.env.HOME): string[] {
  const hide = [
    "/tmp",
    ...(home && isAbsolute(home) && home !== "/" ? [home] : []),
    ...view.hidden,
  ];
  const mounts: { path: string; rank: number; args: string[] }[] = [
    ...hide.map((path) => ({ path, rank: 0, args: ["--tmpfs", path] })),
    ...[...view.readable, ...toolFolders(hide)].map((path) => ({
      path,
      rank: 1,
      args: ["--ro-bind-try", path, path],
    })),
    ...view.binds.map((b) => ({
      path: b.path,
      rank: b.writable ? 2 : 1,
      // A researcher's default folders may not exist yet; the task's own binds were checked.
      args: [b.writable ? "--bind-try" : "--ro-bind-try", b.path, b.path],
    })),
    ...view.writable.map((path) => ({ path, rank: 2, args: ["--bind", path, path] })),
    ...(view.frozen ?? []).map((path) => ({ path, rank: 3, args: ["--ro-bind-try", path, path] })),
  ];
  const depth = (p: string) => p.split("/").filter(Boolean).length;
  mounts.sort((a, b) => depth(a.path) - depth(b.path) || a.rank - b.rank);
  return [
    ...BWRAP_BASE,
    ...(view.network ? ["--share-net"] : []),
    ...GPU_NODES.flatMap((d) => ["--dev-bind-try", d, d]),
    // Root's own secrets stay root-readable inside: the sandbox's root is the real one.
    ...SECRET_FILES.flatMap((f) => ["--ro-bind-try", "/dev/null", f]),
    ...mounts.flatMap((m) => m.args),
  ];
}

/**
 * bubblewrap follows links in what it mounts: a folder of the harness's state that a link
 * made point elsewhere (planted by a program that could write beside it) would open that
 * place to the sandbox. Below a hidden folder, no step of a mounted path may be a link.
 */
function checkMounts(view: View): void {
  for (const path of [...view.writable, ...view.readable])
    for (const hidden of view.hidden) {
      if (path === hidden || !within(path, hidden)) continue;
      let step = hidden;
      for (const part of relative(hidden, path).split(sep)) {
        step = join(step, part);
        let link = false;
        try {
          link = lstatSync(step).isSymbolicLink();
        } catch {}
        if (link)
          throw new Error(
            `${step} is a link (to ${readlinkSync(step)}); the sandbox mounts no folder through a link: remove it`,
          );
      }
    }
}

/**
 * Sets the file-size limit and joins the cgroup ("" for none), then runs the rest. First
 * it closes every descriptor but the standard three (and one given on purpose): ones the orchestrator inherited
 * without close-on-exec (from its own parent) would otherwise reach into the sandbox.
 * bash can name descriptors above 9; where there is no bash, sh runs it without that.
 * (No redirection on the loop: bash would keep the saved stderr in a descriptor it closes.)
 */
const closeFds = (keep: number | undefined) =>
  `for f in /proc/$$/fd/*; do n=\${f##*/}; [ "$n" -gt 2 ] && [ "$n" != "${keep ?? ""}" ] && eval "exec $n>&-"; done; `;
const WRAPPER =
  'ulimit -f "$1" || exit 126; if [ -n "$2" ]; then echo $$ > "$2" || exit 126; fi; shift 2; exec "$@"';
const SIZE_ONLY = 'ulimit -f "$1" || exit 126; shift; exec "$@"';
const SHELL = existsSync("/bin/bash") ? "/bin/bash" : "/bin/sh";

let launches = 0;

/** `bytes` as ulimit -f counts: bash in KiB, sh (dash) in 512-byte blocks, as POSIX has it. */
const blocks = (bytes: number) => String(Math.ceil(bytes / (SHELL === "/bin/bash" ? 1024 : 512)));

/**
 * How to spawn `argv` inside the run's sandbox (as it is, when there is none, but for
 * `maxFileSize` if given). The file-size limit and the cgroup are entered before
 * bubblewrap starts, so nothing inside runs without them. Throws if the cgroup cannot be
 * made (the caller records why).
 */
export function confine(
  confinement: Confinement | null,
  argv: string[],
  maxFileSize?: number,
  /** A descriptor the command is given on purpose (the overlap gate), kept open. */
  keepFd?: number,
): Launch {
  if (!confinement || confinement.sandbox.kind === "none") {
    if (maxFileSize === undefined)
      return { file: argv[0]!, args: argv.slice(1), done: () => undefined };
    return {
      file: SHELL,
      args: ["-c", SIZE_ONLY, "limit", blocks(maxFileSize), ...argv],
      done: () => undefined,
    };
  }
  const { sandbox, view } = confinement;
  const { settings, cap } = sandbox;
  checkMounts(view);
  const inner = cap.kind === "rlimit" ? ["prlimit", `--nproc=${settings.maxProcesses}`, "--"] : [];
  let group = "";
  if (cap.kind === "cgroup") {
    group = join(cap.parent, `autoresearch-${process.pid}-${++launches}`);
    mkdirSync(group);
    writeFileSync(join(group, "pids.max"), String(settings.maxProcesses));
  }
  return {
    file: SHELL,
    args: [
      "-c",
      SHELL === "/bin/bash" ? closeFds(keepFd) + WRAPPER : WRAPPER,
      "sandbox",
      blocks(settings.maxFileSize),
      group && join(group, "cgroup.procs"),
      "bwrap",
      ...bwrapArgs(view),
      "--",
      ...inner,
      ...argv,
    ],
    done: () => {
      if (!group || cap.kind !== "cgroup") return;
      removeGroup(group, 5);
      removeStale(cap.parent);
    },
  };
}

/** An emptied cgroup can linger a moment after its last process is reaped. */
function removeGroup(dir: string, tries: number): void {
  try {
    rmdirSync(dir);
  } catch {
    if (tries > 1) setTimeout(() => removeGroup(dir, tries - 1), 200).unref();
  }
}
