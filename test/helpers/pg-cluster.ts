/**
 * A throwaway PostgreSQL cluster from the machine's own PostgreSQL (Debian's package:
 * /usr/lib/postgresql/<version>/bin), for tests and benches. No test framework here, so
 * that a bench can use it too; tests use `startPostgres` from ./postgres.ts, which removes
 * the cluster after the test file.
 *
 * Run as root (as CI is), the cluster runs as the `postgres` user, which PostgreSQL
 * requires, in a temporary folder that user owns. It listens on a free port of 127.0.0.1
 * (password logins) and on a unix socket in that folder (trust, for the superuser).
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import pg from "pg";

export interface PgCluster {
  readonly port: number;
  /** The server's version, as `postgres --version` says it. */
  readonly version: string;
  /** The folder holding the data, the socket and the server's log. */
  readonly dir: string;
  /** A URL that logs `role` in with `password` over TCP. */
  url(role: string, password: string, database?: string): string;
  /** The superuser's URL (its password is random, made for this cluster). */
  readonly superuserUrl: string;
  /** Runs SQL as the superuser (several statements allowed). */
  admin(sql: string, database?: string): Promise<void>;
  /** Runs a program of PostgreSQL's bin folder (psql, …) as the cluster's user. */
  tool(name: string, args: string[], env?: Record<string, string>): string;
  /** Stops the server (`fast`: ends sessions and shuts down cleanly). */
  stop(mode?: "fast" | "immediate"): void;
  /** Starts it again after `stop`, on the same port (nothing when it runs). */
  start(): void;
  /**
   * Stops the server's processes where they stand (SIGSTOP), as a hung machine would:
   * connections stay open, new ones are taken by the kernel, and nothing answers.
   */
  freeze(): void;
  /** Lets a frozen server go on (SIGCONT). */
  thaw(): void;
  /** Stops the server if it runs and removes its folder. */
  destroy(): void;
}

export interface ClusterOptions {
  maxConnections?: number;
  /** Off by default for tests (speed); a bench measuring commits turns it on. */
  fsync?: boolean;
  /** More `-c name=value` settings. */
  settings?: Record<string, string | number>;
}

/** The bin folder of the newest PostgreSQL installed from Debian's packages. */
export function postgresBin(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0)
    throw new Error(`no PostgreSQL under ${root}: run scripts/install-test-deps.sh`);
  return join(root, versions[0]!, "bin");
}

/** A port of 127.0.0.1 that nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

const asRoot = process.getuid?.() === 0;
const live = new Set<PgCluster>();
// A test process that ends without its afterAll (a crash) still takes its servers along.
process.on("exit", () => {
  for (const cluster of live) cluster.destroy();
});

export async function startCluster(options: ClusterOptions = {}): Promise<PgCluster> {
  const bin = postgresBin();
  const dir = mkdtempSync("/tmp/ar-pg-");
  const data = join(dir, "data");
  const password = randomBytes(12).toString("hex");
  const port = await freePort();
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }));
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }));
    chownSync(dir, uid, gid);
  }
  const pwfile = join(dir, "pwfile");
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (asRoot) execFileSync("chown", ["postgres:postgres", pwfile]);
  const run = (program: string, args: string[], env: Record<string, string> = {}) => {
    const command = asRoot ? "runuser" : join(bin, program);
    const argv = asRoot ? ["-u", "postgres", "--", join(bin, program), ...args] : args;
    return execFileSync(command, argv, {
      cwd: dir,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
  };
  run("initdb", [
    "-D",
    data,
    "-U",
    "postgres",
    `--pwfile=${pwfile}`,
    "--auth-local=trust",
    "--auth-host=scram-sha-256",
    "--no-locale",
    "-E",
    "UTF8",
    "--no-instructions",
  ]);
  rmSync(pwfile);
  const settings: Record<string, string | number> = {
    port,
    listen_addresses: "127.0.0.1",
    unix_socket_directories: dir,
    max_connections: options.maxConnections ?? 100,
    fsync: options.fsync ? "on" : "off",
    synchronous_commit: options.fsync ? "on" : "off",
    full_page_writes: options.fsync ? "on" : "off",
    ...options.settings,
  };
  const flags = Object.entries(settings)
    .map(([k, v]) => `-c ${k}=${v}`)
    .join(" ");
  let running = false;
  const version = execFileSync(join(bin, "postgres"), ["--version"], { encoding: "utf8" }).trim();
  const cluster: PgCluster = {
    port,
    version,
    dir,
    url: (role, pw, database = "postgres") =>
      `postgres://${encodeURIComponent(role)}:${encodeURIComponent(pw)}@127.0.0.1:${port}/${database}`,
    get superuserUrl() {
      return cluster.url("postgres", password);
    },
    async admin(sql, database = "postgres") {
      const client = new pg.Client({
        connectionString: cluster.url("postgres", password, database),
      });
      await client.connect();
      try {
        await client.query(sql);
      } finally {
        await client.end();
      }
    },
    tool: (name, args, env) => run(name, args, env),
    stop(mode = "fast") {
      if (!running) return;
      run("pg_ctl", ["-D", data, "-m", mode, "-w", "stop"]);
      running = false;
    },
    start() {
      if (running) return;
      run("pg_ctl", [
        "-D",
        data,
        "-l",
        join(dir, "server.log"),
        "-w",
        "-t",
        "60",
        "-o",
        flags,
        "start",
      ]);
      running = true;
    },
    freeze() {
      // The postmaster first, so that it forks no one unfrozen meanwhile.
      for (const pid of serverProcesses(data)) signal(pid, "SIGSTOP");
    },
    thaw() {
      for (const pid of serverProcesses(data)) signal(pid, "SIGCONT");
    },
    destroy() {
      live.delete(cluster);
      // A frozen server would take no signal to stop.
      if (running) cluster.thaw();
      try {
        cluster.stop("immediate");
      } catch {}
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(cluster);
  try {
    cluster.start();
  } catch (error) {
    cluster.destroy();
    throw error;
  }
  return cluster;
}

/** The postmaster of the cluster in `data`, then its children; none when it is not running. */
function serverProcesses(data: string): number[] {
  const file = join(data, "postmaster.pid");
  if (!existsSync(file)) return [];
  const postmaster = Number(readFileSync(file, "utf8").split("\n")[0]);
  const children = readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, "utf8");
        // The parent's pid is the second field after the command's closing parenthesis.
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === postmaster;
      } catch {
        return false;
      }
    })
    .map(Number);
  return [postmaster, ...children];
}

/** Signals a process that may have ended since it was listed. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}
