/**
 * The swarm end to end: three hosts (separate clones, separate processes, two hardware
 * classes) on one task, through the CLI, with one PostgreSQL and one `git daemon` remote.
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { startDashboard } from "../../src/report/dashboard/server.js";
import { runCli, sh, startCli, waitFor } from "../helpers.js";
import { initSwarmTask, type SwarmFixture, type SwarmTask, swarmFixture } from "./fixture.js";

const HOSTS = ["alpha", "beta", "gamma"] as const;
// Class names of unequal length, so that `swarm status` shows its columns aligned.
const CLASS: Record<string, string> = { alpha: "cpu-a", beta: "cpu-a", gamma: "cpu-b-small" };
const TRIALS = 10;

let swarm: SwarmFixture;
let remote: string;
let origin: string;
let task: SwarmTask;
const clones: Record<string, string> = {};
const login = (host: string) => task.login(host);

function startHost(host: string, args: string[]): ChildProcess & { out: string } {
  return startCli(args, clones[host]!, login(host).env);
}

const ended = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.on("close", (code) => resolve(code));
  });

function runHost(host: string) {
  return startHost(host, [
    "run",
    "--tag",
    "s1",
    "--max-trials",
    String(TRIALS),
    "--swarm",
    login(host).url,
    "--hardware-class",
    CLASS[host]!,
    // One seed for all: the hosts propose the same changes, and the claims must sort them.
    "--seed",
    "1",
  ]);
}

beforeAll(async () => {
  swarm = await swarmFixture(HOSTS, { init: false });
  task = await initSwarmTask(swarm);
  ({ remote, origin } = task);
  const { init } = task;
  expect(init.stderr).toBe("");
  expect(init.stdout).toMatch(/schema versions 1, 2, 3, 4, 5 applied; task recorded/);
  expect(init.stdout).not.toContain(new URL(swarm.ownerUrl).password);
  for (const host of HOSTS) clones[host] = task.clone(host);
}, 120_000);

afterAll(async () => {
  await swarm?.close();
});

describe("a swarm of three hosts", () => {
  it("shares one line: every trial once in the database and in its host's ledger, no change run twice, every commit on the remote", async () => {
    const children = HOSTS.map((h) => runHost(h));
    // beta is killed mid-run and resumed; the database goes away for a while meanwhile.
    await waitFor(() => /#3/.test(children[1]!.out), 60_000, "beta at its third trial");
    children[1]!.kill("SIGKILL");
    await ended(children[1]!);
    swarm.cluster.stop("fast");
    await new Promise((r) => setTimeout(r, 20_000));
    swarm.cluster.start();
    const resumed = startHost("beta", ["resume"]);
    const codes = await Promise.all([ended(children[0]!), ended(children[2]!), ended(resumed)]);
    // On failure the hosts' own output says why: it goes in the message.
    expect(codes, [children[0]!.out, children[2]!.out, resumed.out].join("\n----\n")).toEqual([
      0, 0, 0,
    ]);

    // The hosts started from the same seed: some proposals were refused before running.
    const outs = [children[0]!.out, children[1]!.out, resumed.out, children[2]!.out];
    expect(outs.some((o) => /not run: (already tried|in flight)/.test(o))).toBe(true);
    const owner = swarm.owner;
    const db = await owner.history({ withDiffs: true });
    for (const host of HOSTS) {
      const ledger = Ledger.open(clones[host]!);
      const run = ledger.run("s1")!;
      const local = ledger.trials(run.id);
      const replicates = new Map(local.map((t) => [t.id, ledger.replicates(t.id).length]));
      ledger.close();
      expect(local.every((t) => t.state === "done")).toBe(true);
      // A class measures each head once: a head that a host of this class measured (its
      // keeper, or a host that adopted it first) is adopted without running again.
      for (const t of local.filter((t) => t.researcher === "swarm" && t.verdict === "keep")) {
        const from = /\(adopted from (\w+)\)$/.exec(t.title ?? "")![1]!;
        const by = /^measured on [\w-]+ by (\w+)$/.exec(t.reason ?? "")?.[1];
        if (CLASS[from] === CLASS[host] || replicates.get(t.id) === 0)
          expect({ by: CLASS[by ?? ""], replicates: replicates.get(t.id) }).toEqual({
            by: CLASS[host],
            replicates: 0,
          });
      }
      // The password went in PGPASSWORD: it is in no record or output.
      const password = login(host).env.PGPASSWORD!;
      expect(readFileSync(join(clones[host]!, ".autoresearch/ledger.db")).includes(password)).toBe(
        false,
      );
      for (const out of outs) expect(out).not.toContain(password);
      const doctor = await runCli(["doctor", "-C", clones[host]!]);
      expect(doctor.stdout).toMatch(/run s1: ok\n$/);
    }
    // No two hosts ran the same change (a host runs its own again only to confirm a win
    // carried onto a newer head).
    const ran = db.trials.filter((t) => t.diffHash && t.runMs > 0);
    const hostsOf = new Map<string, Set<string>>();
    for (const t of ran)
      hostsOf.set(t.diffHash!, new Set([...(hostsOf.get(t.diffHash!) ?? []), t.host]));
    expect([...hostsOf.values()].filter((h) => h.size > 1)).toEqual([]);
    // Each class's incumbent is the best keep measured on that class.
    for (const inc of await owner.incumbents()) {
      const keeps = db.trials.filter(
        (t) => t.hardwareClass === inc.hardwareClass && t.verdict === "keep",
      );
      expect(inc.metric).toBe(Math.min(...keeps.map((t) => t.metric!)));
    }
    // Every trial's commit can be fetched from the remote.
    const refs = sh(clones.alpha!, `git ls-remote ${remote} 'refs/autoresearch-swarm/*'`);
    for (const t of db.trials.filter((t) => t.commitSha && !t.baseline))
      expect(refs).toContain(`${t.commitSha}\trefs/autoresearch-swarm/${t.host}/s1/${t.localN}`);
    // The line moved, and some host built on another's keep.
    const line = await owner.line();
    expect(line!.version).toBeGreaterThan(0);
    const adopted = db.trials.filter((t) => t.baseline && t.title?.includes("(adopted from"));
    expect(adopted.length).toBeGreaterThan(0);

    const status = await runCli(["swarm", "status", "--database", swarm.ownerUrl]);
    expect(status.stderr).toBe("");
    // Every host's run ended cleanly (beta's resumed one too): each says it left.
    for (const host of HOSTS)
      expect(status.stdout).toMatch(new RegExp(`\\n  ${host} +left \\S+ ago +${CLASS[host]} `));
    expect(status.stdout).toContain(`line: version ${line!.version}`);
    expect(status.stdout).not.toContain(new URL(swarm.ownerUrl).password);
    // Each class's best in columns, whatever the length of its class's name.
    const best = status.stdout.split("best per hardware class:\n")[1]!.split(/\n(?! )/)[0]!;
    const rows = best.split("\n");
    expect(new Set(Object.values(CLASS)).size).toBe(2);
    expect(rows).toHaveLength(2);
    expect(new Set(rows.map((r) => r.indexOf("  ("))).size).toBe(1);

    // The dashboard shows the swarm, without its password.
    const dashboard = await startDashboard({ root: clones.alpha!, port: 0, swarm: swarm.ownerUrl });
    try {
      const page = await (await fetch(`http://127.0.0.1:${dashboard.port}/swarm`)).text();
      for (const host of HOSTS) expect(page).toContain(`<td>${host}</td>`);
      expect(page).toContain(`line <b data-field="line">version ${line!.version}:`);
      expect(page).not.toContain(new URL(swarm.ownerUrl).password);
      const runs = await (await fetch(`http://127.0.0.1:${dashboard.port}/`)).text();
      expect(runs).toContain('<a href="/swarm">');
    } finally {
      await dashboard.close();
    }

    const doctor = await runCli(["swarm", "doctor", "--database", swarm.ownerUrl]);
    expect({ out: doctor.stdout, err: doctor.stderr, code: doctor.code }).toEqual({
      out: "swarm: ok\n",
      err: "",
      code: 0,
    });
    // A trial's commit gone from the remote is found.
    const lost = db.trials.find((t) => t.commitSha && !t.baseline)!;
    sh(
      clones.alpha!,
      `git push -q ${remote} :refs/autoresearch-swarm/${lost.host}/s1/${lost.localN}`,
    );
    const again = await runCli(["swarm", "doctor", "--database", swarm.ownerUrl]);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain(`swarm: remote: trial ${lost.host}/${lost.uid}'s commit`);

    // Init again pushes nothing; with another remote it is refused.
    const init = ["swarm", "init", "-C", origin, "--database", swarm.ownerUrl];
    const same = await runCli([...init, "--remote", remote]);
    expect(same.stdout).toMatch(/already recorded, the same; base \w+ already there/);
    const other = await runCli([...init, "--remote", "git://127.0.0.1:1/other.git"]);
    expect({ code: other.code, err: other.stderr }).toMatchObject({
      code: 9,
      err: expect.stringContaining(
        `started with the remote ${remote}, not git://127.0.0.1:1/other.git`,
      ),
    });
  }, 600_000);
});
