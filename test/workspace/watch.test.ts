import { execFileSync } from "node:child_process";
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HarnessWatch } from "../../src/workspace/watch.js";
import { makeRepo } from "../helpers.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function task() {
  const root = makeRepo({ "autoresearch.yaml": "name: t\n", "prepare.py": "x = 1\n" });
  return { root, protected: ["prepare.py"] };
}

/** Whether this file system lets root make a file immutable (ext4 does, tmpfs does not). */
function immutable(file: string): boolean {
  try {
    execFileSync("chattr", ["+i", file], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("the watch over files outside the worktrees", () => {
  it("blames a change on the one program that ran, and puts the file back", async () => {
    const t = task();
    const watch = new HarnessWatch(t);
    const before = readFileSync(join(t.root, ".git/config"), "utf8");
    const clean = await watch.watch(null, async () => 1);
    expect(clean).toEqual({ value: 1, changed: null });
    const guilty = await watch.watch(null, async () => {
      appendFileSync(join(t.root, ".git/config"), "[alias]\n\tx = !true\n");
      appendFileSync(join(t.root, "prepare.py"), "x = 2\n");
    });
    expect(guilty.changed).toEqual({ files: [".git/config", "prepare.py"], certain: true });
    expect(readFileSync(join(t.root, ".git/config"), "utf8")).toBe(before);
    expect(readFileSync(join(t.root, "prepare.py"), "utf8")).toBe("x = 1\n");
  });

  it("suspects every program that ran when a change is found; one run alone is certain", async () => {
    const t = task();
    const watch = new HarnessWatch(t);
    const slow = watch.watch(null, async () => {
      appendFileSync(join(t.root, "autoresearch.yaml"), "# mine\n");
      await sleep(100);
    });
    const quick = await watch.watch(null, () => sleep(20));
    expect(quick.changed).toEqual({ files: ["autoresearch.yaml"], certain: false });
    expect((await slow).changed).toEqual({ files: ["autoresearch.yaml"], certain: false });
    const again = await watch.alone(null, async () => {
      appendFileSync(join(t.root, "autoresearch.yaml"), "# mine\n");
    });
    expect(again.changed).toEqual({ files: ["autoresearch.yaml"], certain: true });
    expect(readFileSync(join(t.root, "autoresearch.yaml"), "utf8")).toBe("name: t\n");
  });

  it("runs alone only once nothing else runs, and starts nothing meanwhile, even what asked in the same moment", async () => {
    const t = task();
    const watch = new HarnessWatch(t);
    const order: string[] = [];
    const first = watch.alone(null, async () => {
      order.push("first alone");
      await sleep(50);
    });
    // Asked while the first runs alone: one waits for it, the other after both.
    const other = sleep(10).then(() =>
      watch.watch(null, async () => {
        order.push("other start");
        appendFileSync(join(t.root, ".git/config"), "# other\n");
        await sleep(50);
        order.push("other end");
      }),
    );
    const second = sleep(10).then(() =>
      watch.alone(null, async () => {
        order.push("second alone");
      }),
    );
    const [, o, s] = await Promise.all([first, other, second]);
    expect(order).toEqual(["first alone", "other start", "other end", "second alone"]);
    expect(o.changed?.certain).toBe(true);
    expect(s.changed).toBeNull();
  });

  it("a change it cannot put back is said once and taken as it is, not blamed on every later program", async () => {
    const t = task();
    const heard: string[] = [];
    const watch = new HarnessWatch(t, (file, why) => heard.push(`${file}: ${why}`));
    const prepare = join(t.root, "prepare.py");
    const first = await watch.watch(null, async () => {
      appendFileSync(prepare, "x = 2\n");
      if (!immutable(prepare)) throw new Error("chattr +i is not supported here");
    });
    try {
      expect(first.changed).toEqual({ files: ["prepare.py"], certain: true });
      expect(heard).toEqual([expect.stringMatching(/^prepare\.py: /)]);
      const later = await watch.watch(null, async () => 1);
      expect(later.changed).toBeNull();
      expect(heard).toHaveLength(1);
    } finally {
      execFileSync("chattr", ["-i", prepare]);
    }
  });

  it("knows the maker only of the files it changed again alone: another file keeps the others from a keep", async () => {
    const t = task();
    const watch = new HarnessWatch(t);
    const config = join(t.root, ".git/config");
    const yaml = join(t.root, "autoresearch.yaml");
    // Trial 1 writes the config always; trial 2 writes the task file only beside others.
    const one = watch.watch(
      null,
      async () => {
        appendFileSync(config, "# one\n");
        await sleep(50);
      },
      1,
    );
    const two = await watch.watch(
      null,
      async () => {
        appendFileSync(yaml, "# two\n");
      },
      2,
    );
    expect(two.changed?.certain).toBe(false);
    expect((await one).changed?.certain).toBe(false);
    const verdict2 = watch.unknownMaker(2);
    const alone1 = await watch.alone(null, async () => appendFileSync(config, "# one\n"), 1);
    expect(alone1.changed).toEqual({ files: [".git/config"], certain: true });
    expect(await watch.alone(null, async () => undefined, 2)).toMatchObject({ changed: null });
    expect(await verdict2).toBe(true);
  });

  it("a run alone cut short by a stop clears no one; the incident waits for the trial to let go", async () => {
    const t = task();
    const stop = new AbortController();
    const watch = new HarnessWatch(t, () => undefined, stop.signal);
    const one = watch.watch(
      null,
      async () => {
        appendFileSync(join(t.root, ".git/config"), "# one\n");
        await sleep(30);
      },
      1,
    );
    await watch.watch(null, async () => undefined, 2);
    await one;
    let settled = false;
    const verdict1 = watch.unknownMaker(1).then((unknown) => {
      settled = true;
      return unknown;
    });
    stop.abort();
    await watch.alone(null, async () => undefined, 2);
    await watch.alone(null, async () => undefined, 1);
    await sleep(10);
    expect(settled).toBe(false);
    watch.release(2);
    watch.release(1);
    expect(await verdict1).toBe(true);
  });
});
