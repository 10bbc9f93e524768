/**
 * `prismq status` (`src/cli/commands/status.ts`).
 *
 * The commands run as functions against an in-memory `CliIo` and a real database file.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Task } from "../../mod.ts";
import { ANY_ESCAPE, assertOneLine } from "../_helpers.ts";
import { TEST_HANDLERS, withFixture } from "./_fixture.ts";

describe("prismq status", () => {
  test("an empty database: all six counts, empty byType, null oldest wait, no workers", async () => {
    await withFixture(async ({ qJson }) => {
      const status = await qJson(["status"]);
      assert.deepEqual(status, {
        counts: { waiting: 0, queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 },
        byType: {},
        oldestQueuedAgeMs: null,
        lastMinute: { completed: 0, failed: 0 },
        workers: [],
      });
    });
  });

  test("counts by status and type, the oldest runnable wait, and the last minute", async () => {
    await withFixture(async ({ q, qJson, dbPath }) => {
      const opts = { handlers: TEST_HANDLERS };
      await q(["enqueue", "noop"], opts);
      const delayed = await qJson<Task>(["enqueue", "noop", "--delay", "1h"], opts);
      // Waits for the delayed one, so stays waiting.
      await q(["enqueue", "noop", "--depends-on", String(delayed.id)], opts);
      await q(["enqueue", "boom", "--max-attempts", "1"], opts);
      const cancelled = await qJson<Task>(["enqueue", "chatty", '{"word": "x"}', "--delay", "1h"], opts);
      await q(["cancel", String(cancelled.id)]);
      assert.equal((await q(["run", "--until-empty"], opts)).code, 0);

      type Status = {
        counts: Record<string, number>;
        byType: Record<string, Record<string, number>>;
        oldestQueuedAgeMs: number | null;
        lastMinute: { completed: number; failed: number };
        workers: unknown[];
      };
      const before = await qJson<Status>(["status"]);
      assert.deepEqual(before.counts, {
        waiting: 1,
        queued: 1,
        running: 0,
        completed: 1,
        failed: 1,
        cancelled: 1,
      });
      assert.equal(before.oldestQueuedAgeMs, null, "a task delayed by an hour is not waiting yet");
      assert.deepEqual(before.lastMinute, { completed: 1, failed: 1 });
      assert.deepEqual(before.byType, {
        noop: { waiting: 1, queued: 1, running: 0, completed: 1, failed: 0, cancelled: 0 },
        boom: { waiting: 0, queued: 0, running: 0, completed: 0, failed: 1, cancelled: 0 },
        chatty: { waiting: 0, queued: 0, running: 0, completed: 0, failed: 0, cancelled: 1 },
      });
      assert.deepEqual(before.workers, []);

      const enqueued = Date.now();
      await q(["enqueue", "noop"]);
      const after = await qJson<Status>(["status"]);
      const waited = Date.now() - enqueued;
      assert.equal(after.counts.queued, 2);
      assert.equal(typeof after.oldestQueuedAgeMs, "number");
      assert.ok(
        after.oldestQueuedAgeMs! >= 0 && after.oldestQueuedAgeMs! <= waited,
        `${after.oldestQueuedAgeMs}`,
      );

      const text = await q(["status"]);
      assert.equal(text.code, 0);
      assert.doesNotMatch(text.stdout, ANY_ESCAPE);
      const lines = text.stdout.split("\n");
      assert.equal(lines[0], `Database: ${dbPath}`);
      assert.equal(
        lines[1],
        "Tasks: waiting 1 · queued 2 · running 0 · completed 1 · failed 1 · cancelled 1",
      );
      assert.match(lines[2], /^Oldest runnable task has waited: \d+ ms$/);
      assert.equal(lines[3], "Last minute: 1 completed (0.0/s), 1 failed");
      assert.match(text.stdout, /\nTYPE +WAITING +QUEUED +RUNNING +COMPLETED +FAILED +CANCELLED\n/);
      assert.match(text.stdout, /\nboom +0 +0 +0 +0 +1 +0\n/);
      assert.match(text.stdout, /\nnoop +1 +2 +0 +1 +0 +0\n/);
      assert.match(text.stdout, /\nWorkers: 0 live\n$/);
    });
  });

  test("a bad --stale-after or an argument exits 2", async () => {
    await withFixture(async ({ q }) => {
      const r = await q(["status", "--stale-after", "3x"]);
      assert.equal(r.code, 2);
      assertOneLine(r.stderr, /Invalid duration '3x' for --stale-after/);
      const extra = await q(["status", "now"]);
      assert.equal(extra.code, 2);
      assertOneLine(extra.stderr, /Unexpected argument 'now'/);
    });
  });
});
