/**
 * A git remote over the network path, as a swarm's hosts reach one: bare repositories
 * served by `git daemon` on a free port of 127.0.0.1, with push enabled. Stopped after
 * the test file.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { connect } from "node:net";
import { join } from "node:path";
import { afterAll } from "vitest";
import { tempDir } from "../helpers.js";
import { freePort } from "./pg-cluster.js";

export interface GitDaemon {
  /** The folder the daemon serves; `git://127.0.0.1:<port>/<name>` is `<base>/<name>`. */
  readonly base: string;
  readonly port: number;
  /** Creates an empty bare repository `name` and returns its git:// URL. */
  bare(name: string): string;
  /** Stops serving: the remote refuses connections. */
  stop(): Promise<void>;
  /** Serves again, on the same port (stopped first if it runs). */
  restart(): Promise<void>;
}

const running: GitDaemon[] = [];
afterAll(async () => {
  for (const daemon of running.splice(0)) await daemon.stop();
});

export async function startGitDaemon(): Promise<GitDaemon> {
  const base = tempDir("ar-remote-");
  const port = await freePort();
  let child = await serve(base, port);
  const daemon: GitDaemon = {
    base,
    port,
    bare(name) {
      execFileSync("git", ["init", "-q", "--bare", "-b", "main", join(base, name)]);
      return `git://127.0.0.1:${port}/${name}`;
    },
    async stop() {
      await child.stop();
    },
    async restart() {
      await child.stop();
      child = await serve(base, port);
    },
  };
  running.push(daemon);
  return daemon;
}

/** `git daemon` serving `base` on `port`, once it accepts connections. */
async function serve(base: string, port: number): Promise<{ stop(): Promise<void> }> {
  const child: ChildProcess = spawn(
    "git",
    [
      "daemon",
      "--reuseaddr",
      "--export-all",
      "--enable=receive-pack",
      "--informative-errors",
      `--base-path=${base}`,
      "--listen=127.0.0.1",
      `--port=${port}`,
      base,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`git daemon did not start on port ${port}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
