import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { SwarmError } from "../errors.js";
import type { TransferTable } from "../ledger/promotions.js";
import { initSwarm, promotionRule, remoteRef } from "../orchestrator/index.js";
import {
  type HostStatus,
  hostState,
  redactUrl,
  SwarmClient,
  type SwarmProblem,
  type SwarmPromotion,
  setupSql,
} from "../swarm/index.js";
import { loadTask } from "../task/load.js";
import { oneLine } from "../util/text.js";
import { TASK_FILE } from "../workspace/layout.js";
import { checkClean } from "../workspace/repo.js";
import { databaseUrl, taskRoot } from "./common.js";

export function registerSwarm(program: Command): void {
  const swarm = program
    .command("swarm")
    .description("many hosts on one research effort: a PostgreSQL database and a git remote");
  swarm
    .command("init")
    .description(
      "start a swarm on the task in the current folder (or --dir): push it, create the schema, record the task",
    )
    .option("-C, --dir <path>", "the task's folder")
    .requiredOption("--database <url>", "postgres://owner@host:port/db, as the swarm's owner role")
    .requiredOption("--remote <url>", "a git remote every host can push to")
    .option("--hosts-role <role>", "grant this role (every host role is a member) what hosts need")
    .action(async (o) => {
      const task = loadTask(taskRoot(o.dir));
      await checkClean(task.root, () => false);
      const done = await initSwarm({
        root: task.root,
        url: databaseUrl("--database", o.database),
        remote: o.remote,
        ...(o.hostsRole ? { hostsRole: o.hostsRole } : {}),
        taskFile: readFileSync(join(task.root, TASK_FILE), "utf8"),
        metric: task.metric.name,
        goal: task.metric.goal,
        promotion: promotionRule(task),
      });
      const schema = done.applied.length
        ? `schema versions ${done.applied.join(", ")} applied`
        : "schema up to date";
      process.stdout.write(
        `swarm at ${done.where}: ${schema}; task ${done.taskRecorded ? "recorded" : "already recorded, the same"}; base ${done.baseCommit.slice(0, 12)} ${done.pushed ? "pushed" : "already there"}\n` +
          "each host: git clone -b autoresearch-swarm <remote>, then autoresearch run --swarm postgres://<its role>@<host>/<db>\n",
      );
    });
  swarm
    .command("setup-sql")
    .description(
      "print the SQL an administrator runs once with psql: roles, the database, who may connect",
    )
    .option("--database <name>", "the database", "autoresearch_swarm")
    .option("--owner <role>", "the role that owns it and runs swarm init", "swarm_owner")
    .option("--hosts-role <role>", "the role every host role is a member of", "swarm_hosts")
    .requiredOption("--host <role...>", "one login role per host (a host is known by it)")
    .action((o) => {
      process.stdout.write(
        setupSql({ database: o.database, owner: o.owner, hostsRole: o.hostsRole, hosts: o.host }),
      );
    });
  swarm
    .command("doctor")
    .description(
      "check the swarm's database and remote: the line, each class's best, no change run twice, every trial's commit on the remote",
    )
    .requiredOption("--database <url>", "postgres://role@host:port/db")
    .option(
      "--remote <url>",
      "the git remote as reached from here (default: the one init recorded)",
    )
    .action(async (o) => {
      const client = await SwarmClient.connect(databaseUrl("--database", o.database), {
        applicationName: "autoresearch doctor",
      });
      try {
        const problems = await client.doctor();
        const line = await client.line();
        const remote = o.remote ?? line?.remote;
        if (remote) problems.push(...(await missingCommits(client, remote)));
        for (const p of problems) process.stdout.write(`swarm: ${p.check}: ${p.detail}\n`);
        if (problems.length === 0) process.stdout.write("swarm: ok\n");
        else process.exitCode = 1;
      } finally {
        await client.close();
      }
    });
  swarm
    .command("status")
    .description("the swarm's hosts, what runs where, the line and each hardware class's best")
    .requiredOption("--database <url>", "postgres://role@host:port/db")
    .option("--json", "print it as JSON")
    .action(async (o) => {
      const client = await SwarmClient.connect(databaseUrl("--database", o.database), {
        applicationName: "autoresearch status",
      });
      try {
        const [status, line, flying, promotions] = await Promise.all([
          client.status(),
          client.line(),
          client.inFlight(),
          client.promotions(),
        ]);
        if (o.json) {
          process.stdout.write(
            `${JSON.stringify({ ...status, line, inFlight: flying, promotions }, null, 2)}\n`,
          );
          return;
        }
        const out: string[] = [
          `swarm at ${client.where}: ${status.trials} trials, ${status.keeps} keeps`,
        ];
        if (line)
          out.push(
            `line: version ${line.version}, ${line.commitSha.slice(0, 12)}${line.host ? ` by ${line.host}: ${oneLine(line.title ?? "")}` : " (the base)"}`,
          );
        out.push("hosts:");
        if (status.hosts.length === 0) out.push("  none yet");
        else out.push(...hostTable(status.hosts));
        out.push("best per hardware class:");
        out.push(
          ...aligned(
            status.best.map((b) => [
              oneLine(b.hardwareClass, 60),
              b.metric === null ? "—" : String(Number(b.metric.toPrecision(6))),
              `(${oneLine(b.host ?? "—", 40)}, ${b.commitSha?.slice(0, 12)})`,
            ]),
          ),
        );
        if (status.best.length === 0) out.push("  none yet");
        if (flying.length) out.push("running now:");
        for (const c of flying) out.push(`  ${c.host}: ${oneLine(c.title ?? "(untitled)")}`);
        if (promotions.length) out.push("promotions:");
        for (const p of promotions.slice(0, 10))
          out.push(`  ${promotionLine(p, line?.version ?? 0)}`);
        process.stdout.write(`${out.join("\n")}\n`);
      } finally {
        await client.close();
      }
    });
}

/** The hosts as a table with a header, each column as wide as its widest cell. */
function hostTable(hosts: HostStatus[]): string[] {
  const rows = [
    ["host", "state", "hardware", "slots", "stages", "trials", "keeps", "spend", "running"],
    ...hosts.map((h) => [
      oneLine(h.name, 40),
      hostState(h),
      oneLine(h.hardwareClass, 60),
      String(h.slots),
      oneLine(h.stages.join(","), 40),
      String(h.trials),
      String(h.keeps),
      `$${h.costUsd.toFixed(2)}`,
      String(h.inFlight),
    ]),
  ];
  return aligned(rows);
}

/** Rows of cells, indented, each column as wide as its widest cell. */
function aligned(rows: string[][]): string[] {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => `  ${r.map((cell, i) => cell.padEnd(widths[i]!)).join("  ")}`.trimEnd());
}

/** A promotion in one line: what, where it stands, and its transfer table's gist. */
function promotionLine(p: SwarmPromotion, lineVersion: number): string {
  const what = `line v${p.version} (${oneLine(p.commit.slice(0, 12))}) at ${oneLine(p.stage, 40)}`;
  // Written by a host: read as what it should be, not trusted to be it.
  const t = p.transfer as Partial<TransferTable> | null;
  if (p.state === "done") {
    const rows = Array.isArray(t?.rows) ? t.rows : [];
    const moves = rows.filter((r) => r?.transfers === true || r?.transfers === false);
    const held = moves.filter((r) => r.transfers).length;
    const stacked = typeof t?.stacked === "number" ? Number(t.stacked.toPrecision(4)) : "—";
    const metric = typeof t?.metric === "string" ? oneLine(t.metric, 40) : "the metric";
    return `${what}: done by ${p.host}; stacked ${stacked} on ${metric} over the baseline, ${held} of ${moves.length} measured changes transfer`;
  }
  if (p.state === "failed") return `${what}: failed on ${p.host}: ${oneLine(p.reason ?? "")}`;
  if (p.state === "running")
    return `${what}: running on ${p.host}${p.leaseLapsed ? " (its lease lapsed: the host is gone or cut off; another host that can run the stage and stands on this head takes it)" : ""}`;
  const past = p.version < lineVersion ? "; the line moved past it before a host could run it" : "";
  return `${what}: pending (asked by ${p.requestedBy})${past}`;
}

/** Trials whose commit the remote does not hold under the trial's ref. */
async function missingCommits(client: SwarmClient, remote: string): Promise<SwarmProblem[]> {
  const listed = await new Promise<string>((resolve, reject) =>
    execFile(
      "git",
      ["ls-remote", remote, "refs/autoresearch-swarm/*"],
      { maxBuffer: 256 * 1024 * 1024, env: { ...process.env, GIT_TERMINAL_PROMPT: "0" } },
      (error, stdout) => (error ? reject(error) : resolve(stdout)),
    ),
  ).catch((error: Error) => {
    throw new SwarmError(
      `could not list the swarm's remote ${redactUrl(remote)}: ${error.message.split("\n")[0]!.replaceAll(remote, redactUrl(remote))}`,
    );
  });
  const refs = new Set(listed.split("\n").filter(Boolean));
  // A measurement (a baseline, an adoption) is of a commit pushed under another ref.
  const shas = new Set([...refs].map((line) => line.split("\t")[0]));
  const problems: SwarmProblem[] = [];
  for (const t of (await client.history({ withDiffs: false })).trials) {
    if (!t.commitSha) continue;
    const ref =
      t.runTag !== null && t.localN !== null ? remoteRef(t.host, t.runTag, t.localN) : null;
    const there = t.baseline
      ? shas.has(t.commitSha)
      : ref !== null && refs.has(`${t.commitSha}\t${ref}`);
    if (!there)
      problems.push({
        check: "remote",
        detail: t.baseline
          ? `trial ${t.host}/${t.uid} measured commit ${t.commitSha.slice(0, 12)}, which is under no ref of the remote`
          : `trial ${t.host}/${t.uid}'s commit ${t.commitSha.slice(0, 12)} is not at ${ref ?? "a trial ref (the upload names no run tag or number)"}`,
      });
  }
  return problems;
}
