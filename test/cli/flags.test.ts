import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/ledger.js";
import { quadraticTask, runCli } from "../helpers.js";

describe("executor flags", () => {
  it("refuse a flag of another executor rather than drop it", async () => {
    const root = quadraticTask();
    const mixed = await runCli(["run", "-C", root, "-n", "1", "--gpus", "0", "--partition", "p"]);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain(
      "--partition is for the slurm executor, not local: choose one (--executor local or --executor slurm)",
    );
    const named = await runCli([
      "run",
      "-C",
      root,
      "-n",
      "1",
      "--executor",
      "slurm",
      "--gpus",
      "0",
    ]);
    expect(named.code).toBe(2);
    expect(named.stderr).toContain("--gpus is for the local executor, not slurm");
    const unknown = await runCli(["run", "-C", root, "--executor", "bogus"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--executor: "bogus" is not one of local, slurm');
  });
});

describe("budgets kept with the run", () => {
  it("a plain resume keeps the run's --budget-usd and stop rules", async () => {
    const root = quadraticTask();
    expect(
      (
        await runCli([
          "run",
          "-C",
          root,
          "-t",
          "b",
          "-n",
          "2",
          "--budget-usd",
          "5",
          "--plateau",
          "7",
        ])
      ).code,
    ).toBe(0);
    expect((await runCli(["resume", "-C", root, "-t", "b", "-n", "3"])).code).toBe(0);
    const ledger = Ledger.open(root);
    const run = ledger.run("b")!;
    ledger.close();
    expect(run.maxUsd).toBe(5);
    expect(JSON.parse(run.stopsJson!).plateau).toBe(7);
  });
});
