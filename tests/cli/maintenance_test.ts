/**
 * `prismq migrate` and `prismq demo` (`src/cli/commands/maintenance.ts`).
 *
 * The commands run as functions against an in-memory `CliIo` and a real database file.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { Task } from "../../mod.ts";
import { cli } from "../_cli.ts";
import { LATEST_SCHEMA } from "../_helpers.ts";
import { withFixture } from "./_fixture.ts";

describe("prismq migrate and demo", () => {
  test("migrate creates the database; --json {database, schemaVersion}", async () => {
    await withFixture(async ({ q, qJson, dbPath }) => {
      assert.equal(existsSync(dbPath), false);
      assert.deepEqual(await qJson(["migrate"]), { database: dbPath, schemaVersion: LATEST_SCHEMA });
      assert.equal(existsSync(dbPath), true);
      const text = await q(["migrate"]);
      assert.equal(text.code, 0);
      assert.equal(text.stdout, `Database ${dbPath} is at schema version ${LATEST_SCHEMA}.\n`);
      const memory = await cli(["migrate", "--db", ":memory:", "--json"]);
      assert.deepEqual(JSON.parse(memory.stdout), { database: ":memory:", schemaVersion: LATEST_SCHEMA });
    });
  });

  test("demo prints its five sections, exits 0, and leaves other tasks alone", async () => {
    await withFixture(async ({ q, qJson }) => {
      const mine = await qJson<Task>(["enqueue", "noop"]);
      const r = await q(["demo"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      assert.match(r.stdout, /^PrismQ demo on database '.*queue\.db'\n/);
      const headings = r.stdout.split("\n").filter((line) => line.startsWith("== "));
      assert.deepEqual(headings, [
        "== 1. Basic registration",
        "== 2. Worker integration",
        "== 3. Global registry",
        "== 4. Handler override",
        "== 5. Error for an unregistered type",
        "== Demo task counts in this database",
      ]);
      assert.match(r.stdout, /worker demo-worker-1 completed 2 task\(s\)/);
      assert.match(
        r.stdout,
        /of type 'demo_unregistered' through a queue without a registry\n +task \d+ is 'failed' after 1 attempt/,
      );
      const after = await qJson<Task>(["show", String(mine.id)]);
      assert.equal(after.status, "queued");
      assert.equal(after.attempts, 0);
    });
  });
});
