/**
 * The benchmark's databases on a PostgreSQL server: the one `--db postgres://…` names, or, for
 * `--db postgres`, a throwaway server the bench starts itself with the tests' fixture (a fresh cluster on
 * 127.0.0.1, on a free port, with the server's default durability) and stops at the end. Each scenario's
 * database is a schema of its own in the URL's database, reached through a URL that sets `search_path`, and
 * dropped afterwards.
 *
 * @module
 */
import process from "node:process";
import postgres from "postgres";
import { redactUrl } from "../../src/store/postgres/connection.ts";
import { startPostgres } from "../../tests/fixtures/postgres_server.ts";
import { type BenchDatabases, drainOutcomeOf, OUTCOME_SQL } from "./databases.ts";

/** The settings the report prints: what decides the speed of a commit, and the server's size. */
const SETTINGS = [
  "server_version",
  "fsync",
  "synchronous_commit",
  "full_page_writes",
  "wal_sync_method",
  "shared_buffers",
  "max_connections",
];

/** Whether `--db` names a PostgreSQL server (`postgres`, `postgresql`, or such a URL). */
export function isPostgres(db: string): boolean {
  return /^postgres(ql)?(:\/\/|$)/i.test(db);
}

/** The schema a location's URL sets as its `search_path`. */
function schemaOf(location: string): string {
  const schema = new URL(location).searchParams.get("search_path");
  if (schema === null || !/^[a-z0-9_]+$/.test(schema)) throw new Error(`not a bench location: ${location}`);
  return schema;
}

/**
 * Databases on the server `db` names: a URL, or `postgres` alone for a server of the bench's own.
 *
 * @throws {Error} when no server can be started, or the server does not answer
 */
export async function postgresDatabases(db: string): Promise<BenchDatabases> {
  const server = db.includes("://") ? undefined : await startPostgres();
  const url = server?.url ?? db;
  const admin = postgres(url, { max: 2, onnotice: false, idle_timeout: 30 });
  let schemas = 0;
  try {
    await admin`SELECT 1`;
  } catch (error) {
    await admin.end({ timeout: 1 });
    server?.stop();
    throw new Error(`cannot reach the PostgreSQL server at ${redactUrl(url)}: ${(error as Error).message}`);
  }
  return {
    kind: "postgres",
    async create(name) {
      const schema = `prismq_bench_${process.pid}_${++schemas}_${name.replace(/[^a-z0-9]/gi, "_")}`
        .toLowerCase();
      await admin.unsafe(`CREATE SCHEMA ${schema}`);
      const location = new URL(url);
      location.searchParams.set("search_path", schema);
      return location.toString();
    },
    async settle(location) {
      // Planner statistics for the rows just queued, as autovacuum would gather them in a queue that has
      // been running: the claim's plan should not depend on when the bench looked.
      await admin.unsafe(`ANALYZE ${schemaOf(location)}.task_queue`);
    },
    async outcome(location) {
      const table = `${schemaOf(location)}.task_queue`;
      const [window] = await admin.unsafe<{ first: unknown; last: unknown; completed: unknown }[]>(
        OUTCOME_SQL.window.replace("task_queue", table),
      );
      const [totals] = await admin.unsafe<{ tasks: unknown; duplicates: unknown; lost: unknown }[]>(
        OUTCOME_SQL.totals.replace("task_queue", table),
      );
      return drainOutcomeOf(window!, totals!);
    },
    async count(location) {
      const [row] = await admin.unsafe(`SELECT count(*) AS n FROM ${schemaOf(location)}.task_queue`);
      return Number(row!.n);
    },
    async remove(location) {
      await admin.unsafe(`DROP SCHEMA IF EXISTS ${schemaOf(location)} CASCADE`);
    },
    async describe() {
      const rows = await admin.unsafe(
        `SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1::text[])`,
        [SETTINGS],
      );
      const settings: Record<string, string> = {};
      for (const name of SETTINGS) {
        const row = rows.find((r) => r.name === name);
        if (row) settings[name] = humanSetting(String(row.setting), row.unit as string | null);
      }
      return {
        kind: "postgres",
        location: `${redactUrl(url)}${server ? " (a throwaway server the bench started)" : ""}`,
        settings,
      };
    },
    async close() {
      await admin.end({ timeout: 5 });
      server?.stop();
    },
  };
}

/** A setting as `SHOW` would print it: `shared_buffers` is counted in 8 kB pages. */
function humanSetting(setting: string, unit: string | null): string {
  if (unit !== "8kB") return unit ? `${setting} ${unit}` : setting;
  const mib = Number(setting) * 8 / 1024;
  return mib >= 1024 ? `${mib / 1024} GB` : `${mib} MB`;
}
