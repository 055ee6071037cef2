import { SwarmError } from "../errors.js";
import { HOST_FUNCTIONS } from "./functions.js";
import { PROMOTION_FUNCTIONS } from "./promotions.js";

/** `name` as a PostgreSQL identifier, quoted so that any name is taken as it is. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * The grants that let members of `hostsRole` take part in the swarm and nothing more:
 * read every table of schema `swarm`, and call the host functions (join, heartbeat,
 * claims, uploads, the incumbent's compare-and-swap). No INSERT, UPDATE or DELETE on any
 * table. Run by the swarm owner; `init` runs it when given a hosts role.
 */
export function grantsSql(hostsRole: string): string {
  const role = quoteIdent(hostsRole);
  return [
    `GRANT USAGE ON SCHEMA swarm TO ${role};`,
    `GRANT SELECT ON ALL TABLES IN SCHEMA swarm TO ${role};`,
    `GRANT EXECUTE ON FUNCTION ${[...HOST_FUNCTIONS, ...PROMOTION_FUNCTIONS].join(", ")} TO ${role};`,
  ].join("\n");
}

/** The names a lab chooses for its swarm's database and roles. */
export interface SetupNames {
  /** The database. */
  database: string;
  /** The role that owns the database and the swarm's schema; it runs `init`. Not a superuser. */
  owner: string;
  /** A role without login that every host role is a member of; the grants go to it. */
  hostsRole: string;
  /** One login role per host: a host is known in the swarm by its role's name. */
  hosts: readonly string[];
}

/**
 * The whole setup a lab copies, as SQL for `psql`: what an administrator runs once
 * (roles, the database, who may connect), and, as comments, the grants the owner's
 * `init` gives afterwards (they need the schema that init creates).
 * Passwords are left as psql variables (`:'owner_password'`), never written here.
 */
export function setupSql(names: SetupNames): string {
  checkNames(names);
  const db = quoteIdent(names.database);
  const owner = quoteIdent(names.owner);
  const hosts = quoteIdent(names.hostsRole);
  const lines = [
    "-- 1. As a PostgreSQL administrator (a superuser or a role with CREATEROLE and CREATEDB),",
    "--    with the passwords given on psql's command line, not in this text:",
    `--    psql -v owner_password=... ${names.hosts.map((_, i) => `-v host${i + 1}_password=... `).join("")}-f setup.sql`,
    `CREATE ROLE ${owner} LOGIN PASSWORD :'owner_password';`,
    `CREATE ROLE ${hosts} NOLOGIN;`,
    ...names.hosts.map(
      (h, i) =>
        `CREATE ROLE ${quoteIdent(h)} LOGIN PASSWORD :'host${i + 1}_password' IN ROLE ${hosts};`,
    ),
    `CREATE DATABASE ${db} OWNER ${owner};`,
    "-- Only the swarm's roles may connect.",
    `REVOKE CONNECT, TEMPORARY ON DATABASE ${db} FROM PUBLIC;`,
    `GRANT CONNECT ON DATABASE ${db} TO ${owner}, ${hosts};`,
    "",
    "-- 2. Then, as the owner, the swarm's init creates schema swarm in the new database and",
    "--    gives the hosts' role these grants (shown here; init runs them):",
    ...grantsSql(names.hostsRole)
      .split("\n")
      .map((line) => `--    ${line}`),
  ];
  return `${lines.join("\n")}\n`;
}

/**
 * Refuses names PostgreSQL would not keep as written: longer than 63 bytes (it cuts them,
 * so a host would be known by another name, and two could become one), with a NUL, or
 * one role named twice.
 */
function checkNames(names: SetupNames): void {
  const all: [string, string][] = [
    ["database", names.database],
    ["owner", names.owner],
    ["hostsRole", names.hostsRole],
    ...names.hosts.map((h, i): [string, string] => [`hosts[${i}]`, h]),
  ];
  for (const [field, name] of all) {
    const bytes = Buffer.byteLength(name);
    if (bytes === 0 || bytes > 63 || name.includes("\u0000"))
      throw new SwarmError(
        `${field} ${JSON.stringify(name)} is not a PostgreSQL name: give 1 to 63 bytes without NUL`,
      );
  }
  const roles = all.filter(([field]) => field !== "database").map(([, name]) => name);
  const twice = roles.find((name, i) => roles.indexOf(name) !== i);
  if (twice !== undefined)
    throw new SwarmError(
      `role ${JSON.stringify(twice)} is named twice: give each role its own name`,
    );
}
