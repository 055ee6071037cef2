import { createServer, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { gitRaw } from "../../src/workspace/git.js";
import { startGitDaemon } from "../helpers/git-daemon.js";
import { makeRepo, sh, tempDir } from "../helpers.js";

describe("a git remote served by git daemon", () => {
  it("takes a push over git:// and hands the same commit to a fetch and a clone", async () => {
    const daemon = await startGitDaemon();
    const url = daemon.bare("task.git");
    const a = makeRepo({ "train.py": "x = 1\n" });
    sh(a, `git push -q ${url} main`);
    sh(a, "echo 'x = 2' > train.py && git -c user.name=t -c user.email=t@t commit -qam two");
    sh(a, `git push -q ${url} HEAD:refs/autoresearch/swarm/trials/1`);
    const head = sh(a, "git rev-parse HEAD");

    const b = tempDir("ar-clone-");
    sh(b, `git clone -q ${url} clone`);
    expect(sh(`${b}/clone`, "git rev-parse HEAD")).toBe(sh(a, "git rev-parse HEAD~1"));
    sh(`${b}/clone`, `git fetch -q origin refs/autoresearch/swarm/trials/1`);
    expect(sh(`${b}/clone`, "git rev-parse FETCH_HEAD")).toBe(head);
    expect(sh(`${b}/clone`, "git show FETCH_HEAD:train.py")).toBe("x = 2");

    // The remote really is the daemon: once it stops, a fetch fails.
    await daemon.stop();
    expect(() => sh(`${b}/clone`, "git fetch -q origin 2>&1")).toThrow();
  });

  it("ends a push to a remote that accepts and never answers, at its timeout or its signal", async () => {
    const sockets: Socket[] = [];
    const server = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `git://127.0.0.1:${(server.address() as { port: number }).port}/task.git`;
    const a = makeRepo({ "train.py": "x = 1\n" });
    try {
      const push = ["push", "--quiet", url, "HEAD:refs/t/1"];
      await expect(gitRaw(a, push, { timeoutMs: 1_000 })).rejects.toThrow(/no answer in 1 s/);
      const stop = new AbortController();
      setTimeout(() => stop.abort(), 500);
      const started = Date.now();
      await expect(gitRaw(a, push, { signal: stop.signal })).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });
});
