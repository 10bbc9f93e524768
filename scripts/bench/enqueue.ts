/**
 * Enqueue scenarios: S1, one awaited `enqueue` per task; S2, bulk, through `enqueueMany` in this process
 * and through `prismq enqueue --ndjson` as a process of its own.
 *
 * @module
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type EnqueueItem, Queue, QueueDatabase } from "../../mod.ts";
import { type BenchContext, eachRun, type Goal, type Measured, perSecond, type Scenario } from "./context.ts";
import { assertClean, exitWithin, withChildren } from "./processes.ts";
import { createSchema, NOOP_PAYLOAD } from "./queue_files.ts";

/** Runs `measure` with a queue on a fresh database, `ctx.sizes.runs` times; it is removed afterwards. */
function onFreshQueues(ctx: BenchContext, name: string, measure: (queue: Queue) => Promise<number>) {
  return eachRun(ctx.sizes.runs, async () => {
    const location = await ctx.db.create(name);
    const db = new QueueDatabase(location);
    try {
      await db.initializeSchema();
      return await measure(new Queue(db));
    } finally {
      await db.close();
      await ctx.db.remove(location);
    }
  });
}

/** S1: one awaited `enqueue()` per task. */
export const enqueueSingle = (goal: Goal): Scenario => async (ctx) => {
  const tasks = ctx.sizes.single;
  const runs = await onFreshQueues(ctx, "s1", async (queue) => {
    const started = performance.now();
    for (let i = 0; i < tasks; i++) await queue.enqueue("noop", { i });
    return perSecond(tasks, performance.now() - started);
  });
  return [{
    id: "S1",
    label: `enqueue, ${tasks.toLocaleString("en")} awaited enqueue() calls`,
    unit: "tasks/s",
    runs,
    ...goal,
  }] satisfies Measured[];
};

/** S2: `enqueueMany` in chunks, each call its own transaction. */
export const enqueueBulk = (goal: Goal): Scenario => async (ctx) => {
  const { bulk: tasks, bulkChunk } = ctx.sizes;
  const chunk = Math.min(bulkChunk, tasks);
  const runs = await onFreshQueues(ctx, "s2", async (queue) => {
    const items: EnqueueItem[] = Array.from({ length: tasks }, (_, i) => ({ type: "noop", payload: { i } }));
    const started = performance.now();
    for (let first = 0; first < tasks; first += chunk) {
      await queue.enqueueMany(items.slice(first, first + chunk));
    }
    return perSecond(tasks, performance.now() - started);
  });
  return [{
    id: "S2",
    label: `enqueue, bulk: ${tasks.toLocaleString("en")} tasks through enqueueMany, ${
      chunk.toLocaleString("en")
    } per call`,
    unit: "tasks/s",
    runs,
    ...goal,
  }] satisfies Measured[];
};

/** S2 through the CLI: the whole `prismq enqueue --ndjson` process, start-up and exit included. */
export const enqueueNdjson = (goal: Goal): Scenario => async (ctx) => {
  const tasks = ctx.sizes.bulk;
  const file = join(ctx.dir, "tasks.ndjson");
  const line = JSON.stringify({ type: "noop", payload: NOOP_PAYLOAD });
  writeFileSync(file, `${line}\n`.repeat(tasks));
  const runs = await eachRun(ctx.sizes.runs, async () => {
    const location = await ctx.db.create("s2-cli");
    await createSchema(location);
    try {
      return await withChildren(async (startChild) => {
        let output = "";
        const child = startChild(ctx.binary, ["enqueue", "--ndjson", file, "--db", location, "--json"], {
          cwd: ctx.dir,
          onLine: (text) => (output += text + "\n"),
        });
        const exit = await exitWithin(child, 60_000 + tasks, "prismq enqueue --ndjson");
        assertClean(exit, child, "prismq enqueue --ndjson");
        const { enqueued } = JSON.parse(output) as { enqueued: number };
        if (enqueued !== tasks) throw new Error(`prismq enqueue --ndjson enqueued ${enqueued} of ${tasks}`);
        return perSecond(tasks, exit.at - child.startedAt);
      });
    } finally {
      await ctx.db.remove(location);
    }
  });
  return [{
    id: "S2.cli",
    label: `enqueue, bulk: ${
      tasks.toLocaleString("en")
    } NDJSON lines through \`prismq enqueue --ndjson\`, process wall time`,
    unit: "tasks/s",
    runs,
    ...goal,
  }] satisfies Measured[];
};
