import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { startDashboard } from "../report/dashboard/server.js";
import { checkTaskFolder } from "../task/load.js";
import { databaseUrl, taskRoot } from "./common.js";

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError(`must be a port number 0-65535, got "${value}"`);
  return n;
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("a live, read-only web dashboard of the task's runs")
    .option("-C, --dir <path>", "the task's folder")
    .option("--host <address>", "the address to listen on", "127.0.0.1")
    .option("-p, --port <n>", "the port (0: any free one)", port, 8765)
    .option(
      "--token <token>",
      "required to read the dashboard; needed on any address but loopback (default: $AUTORESEARCH_TOKEN)",
    )
    .option(
      "--swarm <url>",
      "also show this swarm's database at /swarm (postgres://role@host:port/db, the password from PGPASSWORD or ~/.pgpass)",
    )
    .action(async (o) => {
      const root = taskRoot(o.dir);
      // A mistyped -C is said as such, not as a task without runs.
      checkTaskFolder(root);
      const dashboard = await startDashboard({
        ...(o.swarm ? { swarm: databaseUrl("--swarm", o.swarm) } : {}),
        root,
        host: o.host,
        port: o.port,
        token: o.token ?? process.env.AUTORESEARCH_TOKEN ?? null,
      });
      process.stdout.write(`dashboard: ${dashboard.url}\n(read-only; Ctrl-C to stop)\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          resolve();
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
      await dashboard.close();
    });
}
