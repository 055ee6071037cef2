import { once } from "node:events";
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { runCli, tempDir } from "../helpers.js";
import { fixtureLedger } from "../report/fixture.js";

describe("autoresearch serve on a port already in use", () => {
  it("says the port is taken and how to pick another, without a stack trace", async () => {
    const root = tempDir();
    fixtureLedger(root).ledger.close();
    const taken = createServer();
    taken.listen(0, "127.0.0.1");
    await once(taken, "listening");
    const { port } = taken.address() as { port: number };
    try {
      const result = await runCli(["serve", "--port", String(port)], { cwd: root });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toBe(
        `autoresearch: --port ${port}: the port is already in use on 127.0.0.1 (another dashboard may be serving there); pick another with --port N, or --port 0 for any free one\n`,
      );
      expect(result.stderr).not.toMatch(/\n\s+at /);
    } finally {
      taken.close();
    }
  });
});
