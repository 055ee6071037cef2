import { describe, expect, it } from "vitest";
import { redactRemote, remoteWithoutPassword } from "../../src/orchestrator/swarm.js";

describe("a swarm's git remote, as recorded and shown", () => {
  it("loses a token given as an https user or password, keeps ssh users and scp-like addresses", () => {
    const cases: [string, string, string][] = [
      [
        "https://ghp_SECRET@github.com/lab/task.git",
        "https://github.com/lab/task.git",
        "https://***@github.com/lab/task.git",
      ],
      [
        "https://user:SECRET@git.lab/task.git",
        "https://git.lab/task.git",
        "https://***:***@git.lab/task.git",
      ],
      ["ssh://git@git.lab/task.git", "ssh://git@git.lab/task.git", "ssh://git@git.lab/task.git"],
      [
        "git@git.lab:research/task.git",
        "git@git.lab:research/task.git",
        "git@git.lab:research/task.git",
      ],
      [
        "git://127.0.0.1:9418/task.git",
        "git://127.0.0.1:9418/task.git",
        "git://127.0.0.1:9418/task.git",
      ],
    ];
    for (const [remote, recorded, shown] of cases) {
      expect(remoteWithoutPassword(remote)).toBe(recorded);
      expect(redactRemote(remote)).toBe(shown);
      expect(redactRemote(remote)).not.toContain("SECRET");
    }
  });
});
