/**
 * Raw baselines on PostgreSQL: what the server allows through the same `postgres` driver PrismQ uses, on
 * the same tables (a fresh schema built by PrismQ's own migrations, its trigger included), with no queue
 * logic at all (the statements are in `raw_pg_sql.ts`, prepared):
 *
 * - R1: one awaited INSERT … RETURNING per task;
 * - R2: every row in one transaction, one `INSERT … SELECT … FROM unnest($payloads::text[])` per 10,000;
 *   R2': the same rows through `COPY … FROM STDIN`, the driver's bulk path;
 * - R3, R4: a loop of batched claims (`FOR UPDATE SKIP LOCKED`, 256 at a time) and completions, in one
 *   process and in four (scripts/bench/raw_pg_drain_worker.ts), measured from the database as PrismQ's
 *   drains are; R3', R4': the same with each completion and the next claim in one round trip;
 * - R5: the hand-off between two processes, woken by the insert trigger's NOTIFY (in `latency.ts`, with
 *   {@link POSTGRES_RAW_HANDOFF}).
 *
 * @module
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { denoCommand } from "./binary.ts";
import { type BenchContext, eachRun, type Measured, perSecond, type Scenario } from "./context.ts";
import type { HandOff } from "./latency.ts";
import { createSchema } from "./queue_files.ts";
import { CLAIM_BATCH, COLUMNS, INSERT_MANY, INSERT_ONE, rawPool, run } from "./raw_pg_sql.ts";
import { checkDrains, drainRun, processesInWords } from "./worker_process.ts";

const BULK_CHUNK = 10_000;
const DRIVER = "`postgres` driver, prepared statements";

/** Runs `measure` on a fresh schema with PrismQ's tables, `ctx.sizes.runs` times, through a raw pool. */
function onFreshSchemas(
  ctx: BenchContext,
  name: string,
  measure: (sql: ReturnType<typeof rawPool>, location: string) => Promise<number>,
) {
  return eachRun(ctx.sizes.runs, async () => {
    const location = await ctx.db.create(name);
    const sql = rawPool(location);
    try {
      await createSchema(location);
      return await measure(sql, location);
    } finally {
      await sql.end({ timeout: 5 });
      await ctx.db.remove(location);
    }
  });
}

/** Fails the run when a baseline did not write what it should have: its speed would mean nothing. */
async function expectTasks(ctx: BenchContext, id: string, location: string, tasks: number) {
  const found = await ctx.db.count(location);
  if (found !== tasks) ctx.fail(`${id}: ${found} rows in task_queue, expected ${tasks}`);
}

/** R1: one awaited single-row INSERT … RETURNING id per task. */
export const rawSingleInsert: Scenario = async (ctx) => {
  const tasks = ctx.sizes.single;
  const runs = await onFreshSchemas(ctx, "r1", async (sql, location) => {
    const started = performance.now();
    for (let i = 0; i < tasks; i++) await run(sql, INSERT_ONE, [JSON.stringify({ i }), Date.now()]);
    const speed = perSecond(tasks, performance.now() - started);
    await expectTasks(ctx, "R1", location, tasks);
    return speed;
  });
  return [{
    id: "R1",
    label: `raw single insert, ${tasks.toLocaleString("en")} awaited INSERT … RETURNING, ${DRIVER}`,
    unit: "tasks/s",
    runs,
  }] satisfies Measured[];
};

/** COPY's text format: a backslash is its escape character (JSON text holds no tab or newline). */
function copyLine(payload: string, now: number): string {
  return `noop\t${payload.replaceAll("\\", "\\\\")}\t100\t5\t${now}\t${now}\t${now}\n`;
}

/** R2 and R2': every row in one transaction, by INSERT … SELECT FROM unnest, and by COPY. */
export const rawBulkInsert: Scenario = async (ctx) => {
  const tasks = ctx.sizes.bulk;
  const payloads = Array.from({ length: tasks }, (_, i) => JSON.stringify({ i }));
  const unnest = await onFreshSchemas(ctx, "r2", async (sql, location) => {
    const started = performance.now();
    const now = Date.now();
    await sql.begin(async (tx) => {
      for (let first = 0; first < tasks; first += BULK_CHUNK) {
        await run(tx, INSERT_MANY, [now, payloads.slice(first, first + BULK_CHUNK)]);
      }
    });
    const speed = perSecond(tasks, performance.now() - started);
    await expectTasks(ctx, "R2", location, tasks);
    return speed;
  });
  const copy = await onFreshSchemas(ctx, "r2c", async (sql, location) => {
    const started = performance.now();
    const now = Date.now();
    await sql.begin(async (tx) => {
      const writable = await tx.unsafe(`COPY ${COLUMNS} FROM STDIN`).writable();
      await pipeline(Readable.from([payloads.map((payload) => copyLine(payload, now)).join("")]), writable);
    });
    const speed = perSecond(tasks, performance.now() - started);
    await expectTasks(ctx, "R2'", location, tasks);
    return speed;
  });
  const at = tasks.toLocaleString("en");
  return [
    {
      id: "R2",
      label: `raw bulk insert, ${at} rows in one transaction: INSERT … SELECT FROM unnest($1::text[]), ` +
        `${BULK_CHUNK.toLocaleString("en")} per statement, ${DRIVER}`,
      unit: "tasks/s",
      runs: unnest,
    },
    {
      id: "R2'",
      label: `raw bulk insert, ${at} rows in one transaction: COPY FROM STDIN, \`postgres\` driver`,
      unit: "tasks/s",
      runs: copy,
    },
  ] satisfies Measured[];
};

/**
 * R3 (one process) and R4 (four): the raw claim-and-complete loop in `processes` worker processes, each
 * statement its own transaction; R3' and R4' the same with each batch's completion and the next claim in
 * one transaction and one round trip (as PrismQ's workers record outcomes with their next claim).
 */
export const rawDrain = (id: string, processes: number): Scenario => async (ctx) => {
  const tasks = ctx.sizes.drain;
  const command = (grouped: boolean) => (location: string): [string, string[]] => {
    const [program, args] = denoCommand("raw_pg_drain_worker.ts");
    return [program, [...args, location, ...(grouped ? ["grouped"] : [])]];
  };
  const separate = await eachRun(ctx.sizes.runs, () => drainRun(ctx, processes, tasks, command(false)));
  checkDrains(ctx, id, separate);
  const grouped = await eachRun(ctx.sizes.runs, () => drainRun(ctx, processes, tasks, command(true)));
  checkDrains(ctx, `${id}'`, grouped);
  const label = `raw drain, ${processesInWords(processes)}: ${tasks.toLocaleString("en")} rows claimed ` +
    `(SKIP LOCKED) and completed ${CLAIM_BATCH} at a time`;
  return [
    {
      id,
      label: `${label}, each statement its own transaction, ${DRIVER}`,
      unit: "tasks/s",
      runs: separate.map((run) => run.tasksPerSecond),
    },
    {
      id: `${id}'`,
      label: `${label}, each completion and the next claim in one transaction and one round trip, ${DRIVER}`,
      unit: "tasks/s",
      runs: grouped.map((run) => run.tasksPerSecond),
    },
  ] satisfies Measured[];
};

/** R5 on PostgreSQL: a prepared INSERT, whose trigger's NOTIFY wakes a raw worker's prepared claim. */
export const POSTGRES_RAW_HANDOFF: HandOff = {
  name: "r5",
  workerScript: "raw_pg_latency_worker.ts",
  openEnqueuer(location) {
    const sql = rawPool(location);
    return {
      enqueue: (i) => run(sql, INSERT_ONE, [JSON.stringify({ i }), Date.now()]),
      close: () => sql.end({ timeout: 5 }),
    };
  },
};

/** How {@link POSTGRES_RAW_HANDOFF} hands off, for R5's label. */
export const POSTGRES_RAW_HOW = "a prepared INSERT, whose trigger's NOTIFY wakes a LISTENing worker's " +
  `prepared claim (SKIP LOCKED), ${DRIVER}`;
