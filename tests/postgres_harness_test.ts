/**
 * The conformance harness cleans up after itself even when a store fails to open: a migration that fails
 * on PostgreSQL leaves no schema behind (the test server is shared by every test of a run, and schemas
 * left on it pile up).
 */
// Not rerun on libsql: PostgreSQL only, no SQLite engine is involved.
import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import postgres from "postgres";
import { STORES } from "./conformance/_stores.ts";
import { postgresUnavailable, testServerUrl } from "./_postgres.ts";

const skip = postgresUnavailable();

/** The test schemas this process has on the server now (their names hold its pid, see _postgres.ts). */
async function ownSchemas(): Promise<string[]> {
  const url = new URL(await testServerUrl());
  url.pathname = "/prismq_tests";
  const sql = postgres(url.toString(), { max: 1, onnotice: false });
  try {
    const rows = await sql`SELECT nspname FROM pg_namespace WHERE nspname LIKE ${`s\\_${process.pid}\\_%`}`;
    return rows.map((row) => row.nspname as string).sort();
  } finally {
    await sql.end();
  }
}

test("a PostgreSQL store whose migration fails leaves no schema behind", { skip }, async () => {
  const harness = STORES.find((store) => store.name === "PostgreSQL server")!;
  // One store opened and closed first, so that the shared database exists to look in.
  await (await harness.open()).close();
  const before = await ownSchemas();
  // NaN is no time: the migration's record of itself is refused, and the migration fails.
  await assert.rejects(harness.open({ migrateAt: Number.NaN }));
  assert.deepEqual(await ownSchemas(), before);
});
