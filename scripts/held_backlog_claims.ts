/**
 * How much a held queue's backlog slows the claims of other queues: 50,000 tasks in a paused queue and
 * 50,000 in a limited one at its limit, both of better priority than the 2,000 tasks of a free queue, then
 * claims of 10 (completed at once) from the free queue by a worker that serves every queue and by one that
 * names the free queue, each timed. Prints the median claim time of each. A measurement, not a test.
 *
 * Usage: deno run -A scripts/held_backlog_claims.ts [--db path.db|postgres://…] [--held 50000]
 *   --db   a SQLite file or a PostgreSQL database to fill (default: a temporary file)
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Queue, QueueDatabase } from "../mod.ts";
import { storeOf } from "../src/store/store_of.ts";
import type { ClaimParams } from "../src/store/store.ts";

/** Tasks in each held queue (`--held`, 50,000 by default: 0 gives the claims' cost without a backlog). */
const FREE = 2_000;
const CLAIMS = 100;

const { values } = parseArgs({
  options: { db: { type: "string" }, held: { type: "string", default: "50000" } },
});
const HELD = Number(values.held);
const dir = mkdtempSync(join(tmpdir(), "prismq-held-"));
const location = values.db ?? join(dir, "held.db");
const db = new QueueDatabase(location);
try {
  await db.initializeSchema();
  const queue = new Queue(db);
  const store = storeOf(db);
  for (const [name, n, priority] of [["paused", HELD, 0], ["limited", HELD, 0], ["live", FREE, 5]] as const) {
    for (let done = 0; done < n; done += 5000) {
      await queue.enqueueMany(
        Array.from(
          { length: Math.min(5000, n - done) },
          () => ({ type: "t", payload: {}, queue: name, priority }),
        ),
      );
    }
  }
  await queue.pauseQueue("paused");
  await queue.setQueueLimits("limited", { concurrency: 1 });
  const now = () => Date.now() + 1;
  // The limited queue at its limit.
  await store.taskClaim({
    workerId: "hog",
    limit: 1,
    leaseMs: 600_000,
    now: now(),
    strategy: "priority",
    queues: ["limited"],
  });
  for (
    const [label, queues] of [["serving every queue", undefined], ["naming the free queue", [
      "live",
    ]]] as const
  ) {
    const times: number[] = [];
    for (let i = 0; i < CLAIMS; i++) {
      const params: ClaimParams = {
        workerId: "w",
        limit: 10,
        leaseMs: 60_000,
        now: now(),
        strategy: "priority",
        queues,
      };
      const t0 = performance.now();
      const leased = await store.taskClaim(params);
      times.push(performance.now() - t0);
      if (leased.some((l) => l.task.queue !== "live") || leased.length === 0) {
        throw new Error(`claimed ${leased.length} tasks, of queues ${leased.map((l) => l.task.queue)}`);
      }
      await store.taskRecord({
        starts: [],
        finishes: leased.map((l) => ({
          id: l.task.id,
          leaseToken: l.leaseToken,
          status: "completed" as const,
        })),
      }, now());
    }
    times.sort((a, b) => a - b);
    console.log(`${store.kind}, ${label}: median ${times[times.length >> 1]!.toFixed(3)} ms a claim of 10`);
  }
} finally {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
}
