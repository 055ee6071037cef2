import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Tests spawn real git and real processes; the machine has two cores.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // The fixtures read TEST_SLEEP_S and the like from the harness's environment, which
    // replicates get only when named.
    env: { AUTORESEARCH_PASS_ENV: "TEST_*" },
  },
});
