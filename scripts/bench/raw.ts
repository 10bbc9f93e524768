/**
 * Raw baselines on SQLite files: what the SQLite engine allows on the same schema with no queue logic at
 * all, through `@libsql/client` (R1, R2, R3) and with prepared statements on the engine PrismQ runs files
 * on in this runtime, `node:sqlite` or `libsql` (R1', R2', R3'). PostgreSQL's are in `raw_postgres.ts`.
 * Each runs on a fresh file created by PrismQ's own migrations, so the tables and indexes are the same.
 *
 * @module
 */
import { type Client, createClient } from "@libsql/client";
import { chooseEngine, type EngineConnection } from "../../src/store/sqlite/engines.ts";
import { type BenchContext, eachRun, type Measured, perSecond } from "./context.ts";
import { countTasks, removeDb } from "./databases.ts";
import { createSchema } from "./queue_files.ts";

const COLUMNS = "task_queue (type, payload, priority, max_attempts, run_after, created_at, updated_at)";
const INSERT = `INSERT INTO ${COLUMNS} VALUES (?, ?, 100, 5, ?, ?, ?)`;
const INSERT_JSON = `INSERT INTO ${COLUMNS} SELECT ?, value, 100, 5, ?, ?, ? FROM json_each(?)`;
const CLAIM_BATCH = 256;
const CLAIM = "UPDATE task_queue SET status = 'running', attempts = attempts + 1, locked_by = 'raw', " +
  "lease_token = lower(hex(randomblob(12))), lease_until = ?, started_at = ?, updated_at = ? " +
  "WHERE id IN (SELECT id FROM task_queue WHERE status = 'queued' AND run_after <= ? " +
  `ORDER BY priority, run_after, id LIMIT ${CLAIM_BATCH}) RETURNING id, lease_token`;
const COMPLETE = "UPDATE task_queue SET status = 'completed', finished_at = ?, lease_until = NULL, " +
  "lease_token = NULL, updated_at = ? FROM json_each(?) AS f " +
  "WHERE task_queue.id = f.value ->> 0 AND task_queue.lease_token = f.value ->> 1 " +
  "AND task_queue.status = 'running'";
const BULK_CHUNK = 10_000;
const LEASE_MS = 60_000;

const PRAGMAS = ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA busy_timeout = 5000"];

async function openClient(path: string): Promise<Client> {
  const client = createClient({ url: `file:${path}` });
  for (const pragma of PRAGMAS) await client.execute(pragma);
  return client;
}

/** The engine PrismQ itself runs files on in this runtime (see src/store/sqlite/engines.ts). */
const ENGINE = chooseEngine();

function openNative(path: string): EngineConnection {
  const db = ENGINE.open(path);
  for (const pragma of PRAGMAS) db.exec(pragma);
  return db;
}

/** The two ways in, each run on a fresh file that is deleted afterwards. */
const DRIVERS = {
  client: {
    name: "@libsql/client",
    async run<T>(path: string, fn: (client: Client) => Promise<T>): Promise<T> {
      const client = await openClient(path);
      try {
        return await fn(client);
      } finally {
        client.close();
      }
    },
  },
  native: {
    name: `${ENGINE.name}, prepared statements`,
    async run<T>(path: string, fn: (db: EngineConnection) => Promise<T>): Promise<T> {
      const db = openNative(path);
      try {
        return await fn(db);
      } finally {
        db.close();
      }
    },
  },
};

/** Runs `measure` on a fresh file with PrismQ's schema, `ctx.sizes.runs` times. */
function onFreshFiles(ctx: BenchContext, name: string, measure: (path: string) => Promise<number>) {
  return eachRun(ctx.sizes.runs, async () => {
    const path = await ctx.db.create(name);
    try {
      await createSchema(path);
      return await measure(path);
    } finally {
      removeDb(path);
    }
  });
}

/** Fails the run when a baseline did not write what it should have: its speed would mean nothing. */
function expectTasks(ctx: BenchContext, id: string, path: string, tasks: number): void {
  const found = countTasks(path);
  if (found !== tasks) ctx.fail(`${id}: ${found} rows in task_queue, expected ${tasks}`);
}

/** R1, R1': one awaited single-row INSERT ... RETURNING id per task. */
export async function rawSingleInsert(ctx: BenchContext): Promise<Measured[]> {
  const tasks = ctx.sizes.single;
  const args = (i: number, now: number) => ["noop", JSON.stringify({ i }), now, now, now];
  const client = await onFreshFiles(ctx, "r1", (path) =>
    DRIVERS.client.run(path, async (client) => {
      const started = performance.now();
      for (let i = 0; i < tasks; i++) {
        await client.execute({ sql: `${INSERT} RETURNING id`, args: args(i, Date.now()) });
      }
      const speed = perSecond(tasks, performance.now() - started);
      expectTasks(ctx, "R1", path, tasks);
      return speed;
    }));
  const native = await onFreshFiles(ctx, "r1p", (path) =>
    DRIVERS.native.run(path, async (db) => {
      const insert = db.prepare(`${INSERT} RETURNING id`, false);
      const started = performance.now();
      for (let i = 0; i < tasks; i++) await Promise.resolve(insert.all(args(i, Date.now())));
      const speed = perSecond(tasks, performance.now() - started);
      expectTasks(ctx, "R1'", path, tasks);
      return speed;
    }));
  const label = (driver: string) =>
    `raw single insert, ${tasks.toLocaleString("en")} awaited INSERT … RETURNING, ${driver}`;
  return [
    { id: "R1", label: label(DRIVERS.client.name), unit: "tasks/s", runs: client },
    { id: "R1'", label: label(DRIVERS.native.name), unit: "tasks/s", runs: native },
  ];
}

/** R2, R2': every row in one transaction. */
export async function rawBulkInsert(ctx: BenchContext): Promise<Measured[]> {
  const tasks = ctx.sizes.bulk;
  const payloads = Array.from({ length: tasks }, (_, i) => ({ i }));
  const client = await onFreshFiles(ctx, "r2", (path) =>
    DRIVERS.client.run(path, async (client) => {
      const started = performance.now();
      const now = Date.now();
      const statements = [];
      for (let first = 0; first < tasks; first += BULK_CHUNK) {
        const chunk = JSON.stringify(payloads.slice(first, first + BULK_CHUNK));
        statements.push({ sql: INSERT_JSON, args: ["noop", now, now, now, chunk] });
      }
      await client.batch(statements, "write");
      const speed = perSecond(tasks, performance.now() - started);
      expectTasks(ctx, "R2", path, tasks);
      return speed;
    }));
  const native = await onFreshFiles(ctx, "r2p", (path) =>
    DRIVERS.native.run(path, (db) => {
      const insert = db.prepare(INSERT, false);
      const started = performance.now();
      const now = Date.now();
      db.exec("BEGIN");
      for (const payload of payloads) insert.run(["noop", JSON.stringify(payload), now, now, now]);
      db.exec("COMMIT");
      const speed = perSecond(tasks, performance.now() - started);
      expectTasks(ctx, "R2'", path, tasks);
      return Promise.resolve(speed);
    }));
  const at = tasks.toLocaleString("en");
  return [
    {
      id: "R2",
      label: `raw bulk insert, ${at} rows in one transaction: json_each INSERT … SELECT, ` +
        `${BULK_CHUNK.toLocaleString("en")} per statement, one batch, ${DRIVERS.client.name}`,
      unit: "tasks/s",
      runs: client,
    },
    {
      id: "R2'",
      label:
        `raw bulk insert, ${at} rows in one transaction: a prepared one-row INSERT, ${DRIVERS.native.name}`,
      unit: "tasks/s",
      runs: native,
    },
  ];
}

/** Queues `tasks` rows for a drain, before the clock starts. */
function seedRows(path: string, tasks: number): void {
  const db = openNative(path);
  try {
    const insert = db.prepare(INSERT, false);
    const now = Date.now();
    db.exec("BEGIN");
    for (let i = 0; i < tasks; i++) insert.run(["noop", JSON.stringify({ i }), now, now, now]);
    db.exec("COMMIT");
  } finally {
    db.close();
  }
}

type ClaimedRow = { id: number; lease_token: string };

/** The arguments of CLAIM and COMPLETE at this moment. */
const claimArgs = () => {
  const now = Date.now();
  return [now + LEASE_MS, now, now, now];
};
const completeArgs = (rows: ClaimedRow[]) => {
  const now = Date.now();
  return [now, now, JSON.stringify(rows.map((row) => [row.id, row.lease_token]))];
};

/** R3, R3': claim 256, complete those 256, until nothing is queued; one statement per step. */
export async function rawDrain(ctx: BenchContext): Promise<Measured[]> {
  const tasks = ctx.sizes.drain;
  const finish = (id: string, done: number, ms: number) => {
    if (done !== tasks) ctx.fail(`${id}: ${done} of ${tasks} rows completed`);
    return perSecond(done, ms);
  };
  const client = await onFreshFiles(ctx, "r3", (path) => {
    seedRows(path, tasks);
    return DRIVERS.client.run(path, async (client) => {
      const started = performance.now();
      let done = 0;
      for (;;) {
        const claimed = await client.execute({ sql: CLAIM, args: claimArgs() });
        if (claimed.rows.length === 0) break;
        const rows = claimed.rows as unknown as ClaimedRow[];
        done += (await client.execute({ sql: COMPLETE, args: completeArgs(rows) })).rowsAffected;
      }
      return finish("R3", done, performance.now() - started);
    });
  });
  const native = await onFreshFiles(ctx, "r3p", (path) => {
    seedRows(path, tasks);
    return DRIVERS.native.run(path, async (db) => {
      const claim = db.prepare(CLAIM, false);
      const complete = db.prepare(COMPLETE, false);
      const started = performance.now();
      let done = 0;
      for (;;) {
        const rows = await Promise.resolve(claim.all(claimArgs()) as ClaimedRow[]);
        if (rows.length === 0) break;
        done += Number((await Promise.resolve(complete.run(completeArgs(rows)))).changes);
      }
      return finish("R3'", done, performance.now() - started);
    });
  });
  const label = (driver: string) =>
    `raw drain, ${tasks.toLocaleString("en")} rows claimed and completed ${CLAIM_BATCH} at a time, ${driver}`;
  return [
    { id: "R3", label: label(DRIVERS.client.name), unit: "tasks/s", runs: client },
    { id: "R3'", label: label(DRIVERS.native.name), unit: "tasks/s", runs: native },
  ];
}
