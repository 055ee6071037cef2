import { afterAll } from "vitest";
import { type ClusterOptions, type PgCluster, startCluster } from "./pg-cluster.js";

export type { PgCluster } from "./pg-cluster.js";

const started: PgCluster[] = [];
// After the test file, passed or failed: servers stopped, folders removed.
afterAll(() => {
  for (const cluster of started.splice(0)) cluster.destroy();
});

/** A throwaway PostgreSQL cluster for this test file, removed after it. */
export async function startPostgres(options: ClusterOptions = {}): Promise<PgCluster> {
  const cluster = await startCluster(options);
  started.push(cluster);
  return cluster;
}
