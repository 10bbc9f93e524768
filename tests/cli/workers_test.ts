/**
 * `prismq workers` (`src/cli/commands/workers.ts`).
 *
 * The commands run as functions against an in-memory `CliIo` and a real database file.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { assertOneLine } from "../_helpers.ts";
import { withFixture } from "./_fixture.ts";

describe("prismq workers", () => {
  test("workers --json: heartbeatAgeMs and stale; an old heartbeat is stale", async () => {
    await withFixture(async ({ q, qJson, inspect }) => {
      const now = Date.now();
      await inspect((_, db) =>
        db.transaction(async (tx) => {
          const insert = "INSERT INTO workers (id, host, pid, started_at, heartbeat_at, concurrency, " +
            "handler_types) VALUES (?, ?, ?, ?, ?, ?, ?)";
          await tx.execute(insert, ["w-fresh", "h1", 11, now - 60_000, now, 4, '["noop"]']);
          await tx.execute(insert, ["w-old", "h2", 22, now - 3_600_000, now - 600_000, 2, "[]"]);
        })
      );
      type View = { id: string; heartbeatAgeMs: number; stale: boolean; host: string; pid: number };
      const workers = await qJson<View[]>(["workers"]);
      const since = Date.now() - now;
      assert.deepEqual(workers.map((w) => [w.id, w.stale]), [["w-fresh", false], ["w-old", true]]);
      assert.ok(workers[0].heartbeatAgeMs >= 0 && workers[0].heartbeatAgeMs <= since);
      assert.ok(workers[1].heartbeatAgeMs >= 600_000 && workers[1].heartbeatAgeMs <= 600_000 + since);
      assert.deepEqual(
        Object.keys(workers[0]).sort(),
        [
          "concurrency",
          "handlerTypes",
          "heartbeatAgeMs",
          "heartbeatAt",
          "host",
          "id",
          "pid",
          "stale",
          "startedAt",
        ],
      );
      assert.deepEqual(
        (await qJson<View[]>(["workers", "--stale-after", "1h"])).map((w) => w.stale),
        [false, false],
      );

      const text = await q(["workers"]);
      assert.equal(text.code, 0);
      const lines = text.stdout.trimEnd().split("\n");
      assert.match(lines[0], /^ID +HOST +PID +STARTED +HEARTBEAT +STATE +CONCURRENCY +TYPES$/);
      assert.match(lines[1], /^w-fresh +h1 +11 .* ago +live +4 +noop$/);
      assert.match(lines[2], /^w-old +h2 +22 .* 10 min 0 s ago +stale +2 +-$/);

      const status = await qJson<{ workers: View[] }>(["status"]);
      assert.deepEqual(status.workers.map((w) => [w.id, w.stale]), [["w-fresh", false], ["w-old", true]]);
      const statusText = await q(["status"]);
      assert.match(
        statusText.stdout,
        /\nWorkers: 1 live, 1 stale\n {2}w-fresh \(host h1, pid 11, concurrency 4, heartbeat /,
      );
      assert.doesNotMatch(statusText.stdout, /w-old/);

      assert.deepEqual(await qJson(["workers", "--prune", "--stale-after", "1h"]), { pruned: [] });
      assert.equal((await q(["workers", "--prune"])).stdout, "Removed 1 stale worker.\n");
      assert.deepEqual((await qJson<View[]>(["workers"])).map((w) => w.id), ["w-fresh"]);
    });
  });

  test("workers with none registered", async () => {
    await withFixture(async ({ q, qJson }) => {
      assert.deepEqual(await qJson(["workers"]), []);
      assert.equal(
        (await q(["workers"])).stdout,
        "No workers are registered. Start one with 'prismq run'.\n",
      );
      const bad = await q(["workers", "--stale-after", "soon"]);
      assert.equal(bad.code, 2);
      assertOneLine(bad.stderr, /--stale-after/);
    });
  });
});
