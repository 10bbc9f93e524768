/**
 * The Store on libSQL (SQLite), written with Drizzle. Every write is one statement, or one batch whose
 * first statement writes, so SQLite takes the write lock before it reads anything (the same effect as
 * `BEGIN IMMEDIATE`); the one read-then-write transaction, migration, uses `BEGIN IMMEDIATE` itself.
 *
 * Queries on the hot path are written with Drizzle's `sql` tag rather than its builder, for two measured
 * reasons: statuses must be literals for SQLite to use the partial indexes (a bound parameter hides them),
 * and many-row inserts and updates pass their rows as one JSON parameter read with `json_each`, which costs a
 * fraction of binding every value.
 *
 * @module
 */
import { fillPlaceholders, getTableColumns, type Placeholder, type SQL, sql } from "drizzle-orm";
import { SQLiteSyncDialect, type SQLiteTable } from "drizzle-orm/sqlite-core";
import { BackupRefusedError, DatabaseError, TaskNotFoundError, TaskStateError } from "../../errors.ts";
import { type Task, TASK_STATUSES, type TaskEvent, type TaskStatus, TRANSITIONS } from "../../task.ts";
import type {
  ClaimParams,
  ClaimStrategy,
  ExpiredLease,
  Fence,
  Finish,
  InsertedTask,
  LeasedTask,
  ListFilter,
  LostLease,
  NewTask,
  Progress,
  QueueStats,
  Recorded,
  SqlTransaction,
  Start,
  Store,
  TaskLog,
  TaskLogEntry,
  WorkerInfo,
} from "../store.ts";
import {
  adoptTransaction,
  after,
  insertWithin,
  type MaybePromise,
  OWN_TRANSACTION,
  type OwnTransaction,
} from "./app_transaction.ts";
import { backupFile } from "./backup.ts";
import { filePathOf } from "./local_driver.ts";
import type { Connection } from "./connection.ts";
import type { SqlRow, SqlStatement, SqlValue, StatementResult } from "./driver.ts";
import { MIGRATIONS } from "./migrations.ts";
import {
  INTERNAL_COLUMNS,
  TASK_JSON,
  type TaskLogRow,
  taskLogs,
  taskQueue,
  type WorkerRow,
  workers,
} from "./schema.ts";

/** Rows per INSERT statement, to keep one statement's memory modest. */
const INSERT_CHUNK = 5000;
/** Weighted-random claims draw from this many best-priority candidates, so a claim never scans the queue. */
const WEIGHTED_CANDIDATES = 1000;

/**
 * A bound LIMIT or OFFSET, written `+?`. SQLite's planner reads a bare `LIMIT ?` when it prepares, so each
 * binding expires the statement and its next run prepares it again: 0.1 ms more per claim, about twice the
 * cost of a claim that finds one task. The unary plus makes it an expression the planner leaves alone.
 */
function bound(value: Placeholder | number): SQL {
  return sql`+${value}`;
}

type TaskJsonRow = { task: string };

/** What a claim sets, and so knows without reading it back. */
type ClaimSets = Pick<Task, "status" | "lockedBy" | "leaseUntil" | "updatedAt">;
const CLAIM_SETS: readonly (keyof ClaimSets)[] = ["status", "lockedBy", "leaseUntil", "updatedAt"];

/**
 * The other columns of a task, in {@link CLAIMED_KEYS} order, returned by a claim as plain values: a row of
 * values costs less to return than one JSON object, and a claim returns hundreds.
 */
const CLAIMED_KEYS = Object.keys(getTableColumns(taskQueue)).filter((key) =>
  !INTERNAL_COLUMNS.includes(key) && !(CLAIM_SETS as readonly string[]).includes(key)
);
/** Where each claimed column is in a claim's row. */
const AT = Object.fromEntries(CLAIMED_KEYS.map((key, i) => [key, i])) as Record<
  Exclude<keyof Task, keyof ClaimSets>,
  number
>;
const CLAIMED_COLUMNS = sql.raw(
  CLAIMED_KEYS.map((key) => getTableColumns(taskQueue)[key as keyof typeof taskQueue._.columns].name).join(
    ", ",
  ),
);

/** A table's columns for a SELECT list, each named as its key in the Drizzle schema. */
function columnsOf(table: SQLiteTable): SQL {
  return sql.raw(
    Object.entries(getTableColumns(table)).map(([key, column]) => `${column.name} AS "${key}"`).join(", "),
  );
}

const WORKER_COLUMNS = columnsOf(workers);
const LOG_COLUMNS = columnsOf(taskLogs);

const dialect = new SQLiteSyncDialect();

/** The one-task insert, as fixed text so that the driver's prepared statement is reused. */
const INSERT_ONE = `
  INSERT INTO task_queue
    (type, payload, priority, max_attempts, run_after, idempotency_key, timeout_ms, created_at, updated_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT DO NOTHING
  RETURNING id`;

/** Drizzle SQL as text and positional arguments for the driver. */
function compile(query: SQL): SqlStatement {
  const { sql: text, params } = dialect.sqlToQuery(query);
  return { sql: text, args: params as SqlValue[] };
}

/**
 * A query compiled once, for the hot path: each use only fills in its placeholders, and the driver reuses
 * its prepared statement, since the text never changes.
 */
class PreparedSql {
  readonly #text: string;
  readonly #params: unknown[];

  constructor(query: SQL) {
    const { sql: text, params } = dialect.sqlToQuery(query);
    this.#text = text;
    this.#params = params;
  }

  bind(values: Record<string, unknown>): SqlStatement {
    return { sql: this.#text, args: fillPlaceholders(this.#params, values) as SqlValue[] };
  }
}

const p = sql.placeholder;

/** The claim statement for each strategy, with and without a type filter. */
const CLAIMS = new Map<string, PreparedSql>();

function claimQuery(strategy: ClaimStrategy, typed: boolean): PreparedSql {
  const key = `${strategy}:${typed}`;
  let prepared = CLAIMS.get(key);
  if (prepared) return prepared;
  const ofTypes = typed
    // Unary + keeps SQLite walking the claim index in order instead of sorting every task of these types.
    ? sql`AND +type IN (SELECT value FROM json_each(${p("types")}))`
    : sql``;
  const runnable = sql`status = 'queued' AND run_after <= ${p("now")} ${ofTypes}`;
  const ordered = strategy === "weighted_random"
    // Exponential race: a task's chance to come first is proportional to 1 / (1 + priority).
    ? sql`
      SELECT id FROM (
        SELECT id, priority FROM task_queue WHERE ${runnable}
        ORDER BY ${CLAIM_ORDER.priority} LIMIT ${sql.raw(String(WEIGHTED_CANDIDATES))}
      )
      ORDER BY -ln((abs(random()) % 1000000 + 1) / 1000000.0) * (1 + max(priority, 0)) LIMIT ${
      bound(p("limit"))
    }`
    : sql`SELECT id FROM task_queue WHERE ${runnable} ORDER BY ${CLAIM_ORDER[strategy]} LIMIT ${
      bound(p("limit"))
    }`;
  // The first `start` in claim order start at once, and their attempt counts now; the others are claimed
  // ahead, their attempts untouched and started_at null until they start.
  const starts = sql`c.rank <= ${p("start")}`;
  prepared = new PreparedSql(sql`
    UPDATE task_queue SET
      status = 'running', attempts = attempts + (${starts}), locked_by = ${p("workerId")},
      lease_token = lower(hex(randomblob(12))), lease_until = ${p("leaseUntil")},
      started_at = CASE WHEN ${starts} THEN ${p("now")} END,
      unconfirmed_start = CASE WHEN ${starts} THEN 0 ELSE unconfirmed_start END,
      updated_at = ${p("now")}
    FROM (SELECT id AS claimed_id, row_number() OVER () AS rank FROM (${ordered})) AS c
    WHERE task_queue.id = c.claimed_id AND task_queue.${statusAllows("claim")}
    RETURNING ${CLAIMED_COLUMNS}, lease_token, unconfirmed_start`);
  CLAIMS.set(key, prepared);
  return prepared;
}

function pendingQuery(typed: boolean): PreparedSql {
  const ofTypes = typed ? sql`AND type IN (SELECT value FROM json_each(${p("types")}))` : sql``;
  return new PreparedSql(sql`
    SELECT
      EXISTS (SELECT 1 FROM task_queue WHERE status = 'queued' AND run_after <= ${
    p("now")
  } ${ofTypes}) AS runnable,
      EXISTS (SELECT 1 FROM task_queue WHERE status = 'running' ${ofTypes}) AS running`);
}

const PENDING = { all: pendingQuery(false), typed: pendingQuery(true) };

/**
 * What every outcome sets about the attempt: a task claimed ahead whose start was not recorded yet (it
 * started and finished within one grouped write) has its attempt counted now.
 */
const COUNT_ATTEMPT = sql`
  attempts = attempts + (started_at IS NULL), started_at = coalesce(started_at, ${p("now")})`;

// Completions only, as `{"<lease token>": <id>}`: one JSON value per task, nothing to take apart.
const COMPLETE_MANY = new PreparedSql(sql`
  UPDATE task_queue SET
    status = 'completed', finished_at = ${p("now")}, updated_at = ${p("now")},
    lease_until = NULL, lease_token = NULL, ${COUNT_ATTEMPT}
  FROM json_each(${p("leases")}) AS f
  WHERE task_queue.id = f.value AND task_queue.lease_token = f.key AND task_queue.status = 'running'
  RETURNING task_queue.id AS id`);

const INSERT_UNKEYED = new PreparedSql(sql`
  INSERT INTO task_queue
    (type, payload, priority, max_attempts, run_after, timeout_ms, created_at, updated_at)
  SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 6, ${p("now")}, ${
  p("now")
}
  FROM json_each(${p("rows")})`);

/**
 * {@link INSERT_UNKEYED} for tasks that differ only in their payloads, the usual bulk enqueue: the other
 * columns are bound once, and SQLite reads one string per row instead of seven fields of an array.
 */
const INSERT_UNIFORM = new PreparedSql(sql`
  INSERT INTO task_queue
    (type, payload, priority, max_attempts, run_after, timeout_ms, created_at, updated_at)
  SELECT ${p("type")}, value, ${p("priority")}, ${p("maxAttempts")}, ${p("runAfter")}, ${p("timeoutMs")},
    ${p("now")}, ${p("now")}
  FROM json_each(${p("payloads")})`);

/** A new task's inserted columns, in the order every insert statement here takes them. */
function insertRow(task: NewTask): SqlValue[] {
  return [
    task.type,
    task.payload,
    task.priority,
    task.maxAttempts,
    task.runAfter,
    task.idempotencyKey,
    task.timeoutMs,
  ];
}

/** Whether the tasks differ in nothing but their payloads (none has an idempotency key). */
function uniform(tasks: readonly NewTask[]): boolean {
  const first = tasks[0]!;
  return tasks.every((task) =>
    task.type === first.type && task.priority === first.priority && task.maxAttempts === first.maxAttempts &&
    task.runAfter === first.runAfter && task.timeoutMs === first.timeoutMs
  );
}

/** The statement that inserts `chunk`, tasks without idempotency keys. */
function insertUnkeyed(chunk: readonly NewTask[], now: number): SqlStatement {
  if (!uniform(chunk)) return INSERT_UNKEYED.bind({ now, rows: JSON.stringify(chunk.map(insertRow)) });
  const first = chunk[0]!;
  return INSERT_UNIFORM.bind({
    now,
    type: first.type,
    priority: first.priority,
    maxAttempts: first.maxAttempts,
    runAfter: first.runAfter,
    timeoutMs: first.timeoutMs,
    // Each payload is JSON text already, so this is an array of strings, which json_each gives back as is.
    payloads: JSON.stringify(chunk.map((task) => task.payload)),
  });
}

function chunksOf(tasks: readonly NewTask[]): NewTask[][] {
  const chunks = [];
  for (let i = 0; i < tasks.length; i += INSERT_CHUNK) chunks.push(tasks.slice(i, i + INSERT_CHUNK));
  return chunks;
}

// One statement for any mix of outcomes; the lease token fences out a worker that lost the task.
const FINISH_MANY = new PreparedSql(sql`
  UPDATE task_queue SET
    status = f.value ->> 2,
    run_after = CASE WHEN f.value ->> 2 = 'queued' THEN f.value ->> 3 ELSE run_after END,
    error_message = CASE WHEN f.value ->> 2 = 'completed' THEN error_message ELSE f.value ->> 4 END,
    finished_at = CASE WHEN f.value ->> 2 = 'queued' THEN NULL ELSE ${p("now")} END,
    lease_until = NULL, lease_token = NULL, updated_at = ${p("now")}, ${COUNT_ATTEMPT}
  FROM json_each(${p("outcomes")}) AS f
  WHERE task_queue.id = f.value ->> 0 AND task_queue.lease_token = f.value ->> 1
    AND task_queue.status = 'running'
  RETURNING task_queue.id AS id`);

/** Starts of tasks claimed ahead, as `[id, lease token, started at]`: their attempt counts from now on. */
const START_MANY = new PreparedSql(sql`
  UPDATE task_queue SET
    attempts = attempts + (started_at IS NULL), started_at = coalesce(started_at, f.value ->> 2),
    unconfirmed_start = 0, updated_at = ${p("now")}
  FROM json_each(${p("starts")}) AS f
  WHERE task_queue.id = f.value ->> 0 AND task_queue.lease_token = f.value ->> 1
    AND task_queue.status = 'running'
  RETURNING task_queue.id AS id`);

/**
 * The statements that record `progress`: starts first (but those finishing in the same write, whose outcome
 * counts the attempt itself), then completions (nearly all outcomes) in one, the rest in another.
 */
function progressStatements({ starts, finishes }: Progress, now: number): SqlStatement[] {
  const finishing = new Set(finishes.map((finish) => finish.leaseToken));
  const unfinished = starts.filter((start) => !finishing.has(start.leaseToken));
  const statements = unfinished.length === 0 ? [] : [
    START_MANY.bind({
      now,
      starts: JSON.stringify(unfinished.map((start: Start) => [start.id, start.leaseToken, start.at])),
    }),
  ];
  return [...statements, ...finishStatements(finishes, now)];
}

/** What {@link progressStatements} did: whose fence held, from their results in order. */
function recordedFrom(progress: Progress, results: readonly StatementResult[]): Recorded {
  const finishing = new Set(progress.finishes.map((finish) => finish.leaseToken));
  const startWritten = progress.starts.some((start) => !finishing.has(start.leaseToken));
  const finished = heldIds(startWritten ? results.slice(1) : results);
  const started = startWritten ? heldIds(results.slice(0, 1)) : new Set<number>();
  // A start written through its task's outcome held exactly when the outcome did.
  for (const start of progress.starts) {
    if (finishing.has(start.leaseToken) && finished.has(start.id)) started.add(start.id);
  }
  return { started, finished };
}

/** The statements that record `finishes`: completions (nearly all of them) in one, the rest in another. */
function finishStatements(finishes: readonly Finish[], now: number): SqlStatement[] {
  // Keyed by lease token, which is unique to one claim: two outcomes for one task (from a lost lease and
  // a later claim of the same task) both stay, and the fence decides. Written as text directly: an object
  // with hundreds of keys is slow to build and to stringify.
  const completed: string[] = [];
  const others: Finish[] = [];
  for (const finish of finishes) {
    if (finish.status === "completed") completed.push(`${JSON.stringify(finish.leaseToken)}:${finish.id}`);
    else others.push(finish);
  }
  const statements = [];
  if (completed.length > 0) {
    statements.push(COMPLETE_MANY.bind({ now, leases: `{${completed.join(",")}}` }));
  }
  if (others.length > 0) {
    const outcomes = JSON.stringify(others.map((finish) => [
      finish.id,
      finish.leaseToken,
      finish.status,
      finish.status === "queued" ? finish.runAfter : null,
      finish.status === "completed" ? null : finish.errorMessage,
    ]));
    statements.push(FINISH_MANY.bind({ now, outcomes }));
  }
  return statements;
}

/** The ids whose fence held, from the results of {@link finishStatements}. */
function heldIds(results: readonly StatementResult[]): Set<number> {
  return new Set(results.flatMap((result) => result.rows.map((row) => Number(row.id))));
}

/**
 * Claimed rows as leased tasks, those that start at once first, each part in the strategy's order
 * (RETURNING promises none).
 */
function leasedFrom(values: unknown[][] = [], params: ClaimParams): LeasedTask[] {
  const { strategy } = params;
  const sets: ClaimSets = {
    status: "running",
    lockedBy: params.workerId,
    leaseUntil: params.now + params.leaseMs,
    updatedAt: params.now,
  };
  const leased = values.map((row) => {
    const payload = row[AT.payload] as string;
    // One literal, so that every task has the same shape.
    const task: Task = {
      id: row[AT.id] as number,
      type: row[AT.type] as string,
      payload: JSON.parse(payload),
      status: sets.status,
      priority: row[AT.priority] as number,
      attempts: row[AT.attempts] as number,
      maxAttempts: row[AT.maxAttempts] as number,
      errorMessage: row[AT.errorMessage] as string | null,
      idempotencyKey: row[AT.idempotencyKey] as string | null,
      lockedBy: sets.lockedBy,
      timeoutMs: row[AT.timeoutMs] as number | null,
      runAfter: row[AT.runAfter] as number,
      leaseUntil: sets.leaseUntil,
      createdAt: row[AT.createdAt] as number,
      updatedAt: sets.updatedAt,
      startedAt: row[AT.startedAt] as number | null,
      finishedAt: row[AT.finishedAt] as number | null,
    };
    return {
      task,
      leaseToken: row[CLAIMED_KEYS.length] as string,
      recordStartFirst: row[CLAIMED_KEYS.length + 1] === 1,
      payloadLength: payload.length,
    };
  });
  return leased.sort(({ task: a }, { task: b }) =>
    Number(a.startedAt === null) - Number(b.startedAt === null) || CLAIM_SORT[strategy](a, b)
  );
}

function workerUpsert(worker: WorkerInfo): SQL {
  return sql`
    INSERT INTO ${workers} (id, host, pid, started_at, heartbeat_at, concurrency, handler_types)
    VALUES (${worker.id}, ${worker.host}, ${worker.pid}, ${worker.startedAt}, ${worker.heartbeatAt},
      ${worker.concurrency}, ${JSON.stringify(worker.handlerTypes)})
    ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
      heartbeat_at = excluded.heartbeat_at, concurrency = excluded.concurrency,
      handler_types = excluded.handler_types`;
}

function toTask(row: TaskJsonRow): Task {
  return JSON.parse(row.task);
}

/** A status list as SQL literals, so that SQLite can match partial indexes. */
function literalStatuses(statuses: readonly TaskStatus[]): SQL {
  for (const status of statuses) {
    if (!TASK_STATUSES.includes(status)) throw new TypeError(`bad status ${status}`);
  }
  return sql.raw(`(${statuses.map((status) => `'${status}'`).join(", ")})`);
}

/** The statuses an event may start from: the store's side of `TRANSITIONS`. */
function statusAllows(event: TaskEvent): SQL {
  return sql`status IN ${literalStatuses(TRANSITIONS[event].from)}`;
}

function fencesJson(fences: readonly Fence[]): string {
  return JSON.stringify(fences.map((fence) => [fence.id, fence.leaseToken]));
}

/** The claim order again, for the rows RETURNING hands back in no promised order. */
const CLAIM_SORT: Record<ClaimStrategy, (a: Task, b: Task) => number> = {
  priority: (a, b) => a.priority - b.priority || a.runAfter - b.runAfter || a.id - b.id,
  fifo: (a, b) => a.id - b.id,
  lifo: (a, b) => b.id - a.id,
  weighted_random: () => 0,
};

/**
 * The index that lets fifo and lifo claims walk queued tasks by id, with each one's due time at hand so
 * that tasks not yet due are passed over without reading their rows. Only workers using those strategies
 * need it, so only they create it, and queues that never use them do not pay for it on every write.
 */
const ORDER_INDEX =
  sql`CREATE INDEX IF NOT EXISTS task_queue_queued_id ON task_queue (id, run_after) WHERE status = 'queued'`;

const CLAIM_ORDER: Record<Exclude<ClaimStrategy, "weighted_random">, SQL> = {
  priority: sql.raw("priority, run_after, id"),
  fifo: sql.raw("id"),
  lifo: sql.raw("id DESC"),
};

export class SqliteStore implements Store {
  readonly #conn: Connection;
  #hasOrderIndex = false;

  constructor(connection: Connection) {
    this.#conn = connection;
  }

  async #all<T = SqlRow>(query: SQL): Promise<T[]> {
    return (await this.#conn.execute(compile(query))).rows as T[];
  }

  /** Runs the queries as one write transaction and returns each one's rows. */
  async #batch(queries: readonly SQL[]): Promise<SqlRow[][]> {
    return (await this.#conn.batch(queries.map(compile))).map((result) => result.rows);
  }

  migrate(now: number): Promise<number[]> {
    return this.#conn.transaction(async (tx) => {
      await tx.execute({
        sql: "CREATE TABLE IF NOT EXISTS prismq_migrations " +
          "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        args: [],
      });
      const rows = (await tx.execute({ sql: "SELECT version FROM prismq_migrations", args: [] })).rows;
      const applied = new Set(rows.map((row) => Number(row.version)));
      const newest = Math.max(0, ...applied);
      const known = MIGRATIONS[MIGRATIONS.length - 1]!.version;
      if (newest > known) {
        throw new DatabaseError(
          `This database was migrated by a newer PrismQ (schema version ${newest}; this one knows up to ` +
            `${known}). Upgrade PrismQ to use it.`,
        );
      }
      if (applied.size === 0) {
        // A database PrismQ never migrated that has tables by PrismQ's names belongs to something else.
        const { rows: taken } = await tx.execute({
          sql:
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN ('task_queue', 'workers', 'task_logs')",
          args: [],
        });
        if (taken.length > 0) {
          throw new DatabaseError(
            `This database already has ${
              taken.map((row) => `a table '${row.name}'`).join(" and ")
            } that PrismQ ` +
              `did not create (there is no record of PrismQ's migrations in it). Give PrismQ a database of its own.`,
          );
        }
      }
      const done: number[] = [];
      for (const migration of MIGRATIONS) {
        if (applied.has(migration.version)) continue;
        if (migration.precondition) {
          const { rows: [row] } = await tx.execute({ sql: migration.precondition.sql, args: [] });
          if (Number(Object.values(row ?? {})[0] ?? 0) !== 0) {
            throw new DatabaseError(
              `Cannot upgrade this database to schema version ${migration.version}: ${migration.precondition.message}`,
            );
          }
        }
        await tx.executeMultiple(migration.sql);
        await tx.execute({
          sql: "INSERT INTO prismq_migrations (version, name, applied_at) VALUES (?, ?, ?)",
          args: [migration.version, migration.name, now],
        });
        done.push(migration.version);
      }
      return done;
    });
  }

  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    return this.#conn.transaction((tx) => {
      const handle: SqlTransaction & OwnTransaction = {
        // Booleans are stored as SQLite stores them, 1 and 0.
        execute: (text, args = []) =>
          tx.execute({
            sql: text,
            args: args.map((arg) => typeof arg === "boolean" ? Number(arg) : arg) as SqlValue[],
          }),
        [OWN_TRANSACTION]: {
          owner: this.#conn,
          values: async (query) => (await tx.execute({ ...compile(query), raw: true })).values ?? [],
        },
      };
      return fn(handle);
    });
  }

  taskInsertManyWithin(
    tx: unknown,
    tasks: readonly NewTask[],
    now: number,
    sync: boolean,
  ): MaybePromise<InsertedTask[]> {
    const location = {
      owner: this.#conn,
      filePath: this.#conn.isRemote ? null : filePathOf(this.#conn.url),
    };
    return after(adoptTransaction(tx, location, sync), (run) => insertWithin(run, tasks, now));
  }

  async taskInsertMany(tasks: readonly NewTask[], now: number): Promise<InsertedTask[]> {
    if (tasks.length === 0) return [];
    if (tasks.length === 1) return [await this.#insertOne(tasks[0]!, now)];
    const keys = [...new Set(tasks.flatMap((task) => task.idempotencyKey ?? []))];
    if (keys.length === 0) return await this.#insertUnkeyed(tasks, now);
    const inserts = [];
    for (const chunk of chunksOf(tasks)) {
      const rows = JSON.stringify(chunk.map(insertRow));
      // No conflict target: the idempotency key is the only unique column an insert can collide on.
      // (`WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT.)
      inserts.push(sql`
        INSERT INTO task_queue
          (type, payload, priority, max_attempts, run_after, idempotency_key, timeout_ms, created_at, updated_at)
        SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6,
          ${now}, ${now}
        FROM json_each(${rows}) WHERE true
        ON CONFLICT DO NOTHING
        RETURNING id, idempotency_key AS "idempotencyKey"`);
    }
    const keyed = [
      sql`
        SELECT ${TASK_JSON} FROM task_queue
        WHERE idempotency_key IN (SELECT value FROM json_each(${JSON.stringify(keys)}))`,
    ];
    // One transaction: every task goes in, or none does.
    const results = await this.#batch([...inserts, ...keyed]);
    const inserted = (results.slice(0, inserts.length) as { id: number; idempotencyKey: string | null }[][])
      .flat();
    const byKey = new Map<string, Task>();
    for (const row of (keyed.length ? results[results.length - 1] : []) as TaskJsonRow[]) {
      const task = toTask(row);
      byKey.set(task.idempotencyKey!, task);
    }
    const createdKeys = new Set(inserted.flatMap((row) => row.idempotencyKey ?? []));
    // SQLite returns inserted rows in no promised order, but ids grow in insertion order.
    const unkeyedIds = inserted.filter((row) => row.idempotencyKey === null).map((row) => Number(row.id))
      .sort((a, b) => a - b);
    let nextUnkeyed = 0;
    return tasks.map((task) => {
      if (task.idempotencyKey === null) return { id: unkeyedIds[nextUnkeyed++]!, created: true };
      const stored = byKey.get(task.idempotencyKey)!;
      // Only the first of several tasks with one key in this call created it.
      return createdKeys.delete(task.idempotencyKey)
        ? { id: stored.id, created: true }
        : { id: stored.id, created: false, existing: stored };
    });
  }

  /**
   * Tasks without idempotency keys: nothing can conflict, so every row goes in and the ids need not be
   * read back. SQLite numbers a row one past the largest id (there is no AUTOINCREMENT), so the rows of
   * one INSERT, which holds the write lock, get consecutive ids ending at the last inserted one.
   */
  async #insertUnkeyed(tasks: readonly NewTask[], now: number): Promise<InsertedTask[]> {
    const chunks = chunksOf(tasks);
    const results = await this.#conn.batch(chunks.map((chunk) => insertUnkeyed(chunk, now)));
    const inserted: InsertedTask[] = [];
    chunks.forEach((chunk, i) => {
      const first = results[i]!.lastInsertRowid! - chunk.length + 1;
      for (let j = 0; j < chunk.length; j++) inserted.push({ id: first + j, created: true });
    });
    return inserted;
  }

  /** One task in one statement: the common enqueue, kept to a single prepared INSERT. */
  async #insertOne(task: NewTask, now: number): Promise<InsertedTask> {
    for (;;) {
      const { rows } = await this.#conn.execute({ sql: INSERT_ONE, args: [...insertRow(task), now, now] });
      if (rows.length === 1) return { id: Number(rows[0]!.id), created: true };
      // The key is taken: the task holding it is the answer (unless it was purged meanwhile: try again).
      const [existing] = await this.#all<TaskJsonRow>(
        sql`SELECT ${TASK_JSON} FROM task_queue WHERE idempotency_key = ${task.idempotencyKey}`,
      );
      if (existing) {
        const stored = toTask(existing);
        return { id: stored.id, created: false, existing: stored };
      }
    }
  }

  async taskGet(id: number): Promise<Task | undefined> {
    const rows = await this.#all<TaskJsonRow>(sql`SELECT ${TASK_JSON} FROM task_queue WHERE id = ${id}`);
    return rows[0] && toTask(rows[0]);
  }

  async taskList(filter: ListFilter): Promise<Task[]> {
    const conditions = [
      filter.status ? sql`status IN ${literalStatuses([filter.status])}` : undefined,
      filter.type ? sql`type = ${filter.type}` : undefined,
    ].filter((condition) => condition !== undefined);
    const where = conditions.length ? sql`WHERE ${sql.join(conditions, sql` AND `)}` : sql``;
    const rows = await this.#all<TaskJsonRow>(sql`
        SELECT ${TASK_JSON} FROM task_queue ${where}
        ORDER BY id DESC LIMIT ${bound(filter.limit)} OFFSET ${bound(filter.offset)}`);
    return rows.map(toTask);
  }

  async taskClaim(params: ClaimParams): Promise<LeasedTask[]> {
    const { values } = await this.#conn.execute(await this.#claimStatement(params));
    return leasedFrom(values, params);
  }

  async #claimStatement(params: ClaimParams): Promise<SqlStatement> {
    const { now, limit, strategy, types } = params;
    if ((strategy === "fifo" || strategy === "lifo") && !this.#hasOrderIndex) {
      await this.#all(ORDER_INDEX);
      this.#hasOrderIndex = true;
    }
    const statement = claimQuery(strategy, types !== undefined).bind({
      now,
      limit,
      start: params.start ?? limit,
      types: types && JSON.stringify(types),
      workerId: params.workerId,
      leaseUntil: now + params.leaseMs,
    });
    return { ...statement, raw: true };
  }

  async taskRecordAndClaim(
    progress: Progress,
    params: ClaimParams,
  ): Promise<Recorded & { leased: LeasedTask[] }> {
    const statements = progressStatements(progress, params.now);
    if (statements.length === 0) {
      return { started: new Set(), finished: new Set(), leased: await this.taskClaim(params) };
    }
    const results = await this.#conn.batch([...statements, await this.#claimStatement(params)]);
    const claimed = results.pop()!;
    return { ...recordedFrom(progress, results), leased: leasedFrom(claimed.values, params) };
  }

  async taskRecord(progress: Progress, now: number): Promise<Recorded> {
    const statements = progressStatements(progress, now);
    if (statements.length === 0) return { started: new Set(), finished: new Set() };
    const results = statements.length === 1
      ? [await this.#conn.execute(statements[0]!)]
      : await this.#conn.batch(statements);
    return recordedFrom(progress, results);
  }

  async taskReleaseMany(fences: readonly Fence[], now: number): Promise<Set<number>> {
    if (fences.length === 0) return new Set();
    const rows = await this.#all<{ id: number }>(sql`
        UPDATE task_queue SET
          status = 'queued', attempts = max(attempts - (started_at IS NOT NULL), 0),
          run_after = min(run_after, ${now}), lease_until = NULL, lease_token = NULL, updated_at = ${now}
        FROM json_each(${fencesJson(fences)}) AS f
        WHERE task_queue.id = f.value ->> 0 AND task_queue.lease_token = f.value ->> 1
          AND task_queue.status = 'running'
        RETURNING task_queue.id AS id`);
    return new Set(rows.map((row) => Number(row.id)));
  }

  async taskExtendLease(fence: Fence, leaseUntil: number, _now: number): Promise<boolean> {
    const rows = await this.#all<{ id: number }>(sql`
        UPDATE task_queue SET lease_until = ${leaseUntil}
        WHERE id = ${fence.id} AND lease_token = ${fence.leaseToken} AND status = 'running'
        RETURNING id`);
    return rows.length === 1;
  }

  async taskExpiredLeases(now: number, limit: number): Promise<ExpiredLease[]> {
    return await this.#all<ExpiredLease>(sql`
      SELECT id, lease_token AS "leaseToken", lease_until AS "leaseUntil" FROM task_queue
      WHERE status = 'running' AND lease_until < ${now}
      ORDER BY lease_until LIMIT ${bound(limit)}`);
  }

  async taskReapExpired(
    now: number,
    only?: readonly ExpiredLease[],
  ): Promise<{ requeued: number; failed: number }> {
    const confirmed = only === undefined ? sql`` : sql`
      AND (id, lease_token, lease_until) IN (
        SELECT f.value ->> 0, f.value ->> 1, f.value ->> 2
        FROM json_each(${
      JSON.stringify(only.map((lease) => [lease.id, lease.leaseToken, lease.leaseUntil]))
    }) AS f
      )`;
    const expired = sql`status = 'running' AND lease_until < ${now} ${confirmed}`;
    const reason = sql`'lease expired: worker ' || coalesce(locked_by, '?') || ' stopped renewing it'`;
    // A task claimed ahead whose start was never recorded keeps its attempts and never fails here; it may
    // have started in the moment its worker died, so its next start is recorded before its handler runs.
    const [failed, requeued] = await this.#batch([
      sql`
        UPDATE task_queue SET status = 'failed', error_message = ${reason}, finished_at = ${now},
          lease_until = NULL, lease_token = NULL, updated_at = ${now}
        WHERE ${expired} AND started_at IS NOT NULL AND attempts >= max_attempts
        RETURNING id`,
      sql`
        UPDATE task_queue SET status = 'queued', run_after = ${now},
          error_message = CASE WHEN started_at IS NULL THEN error_message ELSE ${reason} END,
          unconfirmed_start = CASE WHEN started_at IS NULL THEN 1 ELSE unconfirmed_start END,
          lease_until = NULL, lease_token = NULL, updated_at = ${now}
        WHERE ${expired}
        RETURNING id`,
    ]);
    return { requeued: requeued!.length, failed: failed!.length };
  }

  async taskCancel(id: number, now: number): Promise<Task> {
    const rows = await this.#all<TaskJsonRow>(sql`
        UPDATE task_queue SET status = 'cancelled', finished_at = ${now}, updated_at = ${now},
          lease_until = NULL, lease_token = NULL
        WHERE id = ${id} AND ${statusAllows("cancel")}
        RETURNING ${TASK_JSON}`);
    if (rows[0]) return toTask(rows[0]);
    throw await this.#explainRefusal(id, "cancel");
  }

  async taskRequeue(id: number, now: number): Promise<Task> {
    const rows = await this.#all<TaskJsonRow>(sql`
        UPDATE task_queue SET status = 'queued', attempts = 0, run_after = ${now}, finished_at = NULL,
          updated_at = ${now}
        WHERE id = ${id} AND ${statusAllows("requeue")}
        RETURNING ${TASK_JSON}`);
    if (rows[0]) return toTask(rows[0]);
    throw await this.#explainRefusal(id, "requeue");
  }

  async #explainRefusal(id: number, event: "cancel" | "requeue"): Promise<Error> {
    const task = await this.taskGet(id);
    if (!task) return new TaskNotFoundError(id);
    return new TaskStateError(
      id,
      task.status,
      event === "cancel" ? "cancel" : "retry",
      TRANSITIONS[event].from,
    );
  }

  async taskRequeueFailed(type: string | undefined, now: number): Promise<number> {
    const ofType = type === undefined ? sql`` : sql`AND type = ${type}`;
    const rows = await this.#all<{ id: number }>(sql`
        UPDATE task_queue SET status = 'queued', attempts = 0, run_after = ${now}, finished_at = NULL,
          updated_at = ${now}
        WHERE status = 'failed' ${ofType}
        RETURNING id`);
    return rows.length;
  }

  async taskPurge(statuses: readonly TaskStatus[], finishedBefore: number): Promise<number> {
    const rows = await this.#all<{ id: number }>(sql`
        DELETE FROM task_queue
        WHERE finished_at < ${finishedBefore} AND status IN ${literalStatuses(statuses)}
          -- SQLite numbers a new row after the largest id present: keeping the newest task keeps ids unique.
          AND id < (SELECT max(id) FROM task_queue)
        RETURNING id`);
    return rows.length;
  }

  async taskStats(now: number): Promise<QueueStats> {
    const [perTypeStatus, oldest, recent] = await this.#batch([
      sql`SELECT type, status, count(*) AS n FROM task_queue GROUP BY type, status`,
      sql`SELECT min(run_after) AS "runAfter" FROM task_queue WHERE status = 'queued' AND run_after <= ${now}`,
      sql`
        SELECT status, count(*) AS n FROM task_queue
        WHERE finished_at >= ${now - 60_000} AND status IN ('completed', 'failed')
        GROUP BY status`,
    ]) as [
      { type: string; status: TaskStatus; n: number }[],
      { runAfter: number | null }[],
      { status: "completed" | "failed"; n: number }[],
    ];
    const zero = () => Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
    const counts = zero();
    const byType: Record<string, Record<TaskStatus, number>> = {};
    for (const { type, status, n } of perTypeStatus) {
      counts[status] += Number(n);
      (byType[type] ??= zero())[status] = Number(n);
    }
    const lastMinute = { completed: 0, failed: 0 };
    for (const { status, n } of recent) lastMinute[status] = Number(n);
    const oldestRunAfter = oldest[0]?.runAfter;
    return {
      counts,
      byType,
      oldestQueuedAgeMs: oldestRunAfter == null ? null : Math.max(0, now - Number(oldestRunAfter)),
      lastMinute,
    };
  }

  async taskPending(now: number, types?: readonly string[]): Promise<{ runnable: number; running: number }> {
    const query = types ? PENDING.typed : PENDING.all;
    const { rows: [row] } = await this.#conn.execute(
      query.bind({ now, types: types && JSON.stringify(types) }),
    );
    return { runnable: Number(row!.runnable), running: Number(row!.running) };
  }

  async workerHeartbeat(
    worker: WorkerInfo | null,
    fences: readonly Fence[],
    leaseUntil: number,
  ): Promise<LostLease[]> {
    const upsert = worker && workerUpsert(worker);
    if (fences.length === 0) {
      if (upsert) await this.#all(upsert);
      return [];
    }
    const json = fencesJson(fences);
    const extend = sql`
      UPDATE task_queue SET lease_until = ${leaseUntil}
      FROM json_each(${json}) AS f
      WHERE task_queue.id = f.value ->> 0 AND task_queue.lease_token = f.value ->> 1
        AND task_queue.status = 'running'
      RETURNING task_queue.id AS id`;
    const current = sql`
      SELECT id, status FROM task_queue
      WHERE id IN (SELECT f.value ->> 0 FROM json_each(${json}) AS f)`;
    const results = await this.#batch(upsert ? [upsert, extend, current] : [extend, current]);
    const [extended, statuses] = results.slice(upsert ? 1 : 0);
    const kept = new Set((extended as { id: number }[]).map((row) => Number(row.id)));
    const statusOf = new Map((statuses as { id: number; status: TaskStatus }[]).map((r) => [r.id, r.status]));
    return fences.filter((fence) => !kept.has(fence.id)).map((fence) => ({
      id: fence.id,
      status: statusOf.get(fence.id) ?? "deleted",
    }));
  }

  async workerDelete(id: string): Promise<void> {
    await this.#all(sql`DELETE FROM ${workers} WHERE ${workers.id} = ${id}`);
  }

  async workerPrune(heartbeatBefore: number): Promise<string[]> {
    const rows = await this.#all<{ id: string }>(
      sql`DELETE FROM ${workers} WHERE ${workers.heartbeatAt} < ${heartbeatBefore} RETURNING id`,
    );
    return rows.map((row) => row.id).sort();
  }

  async workerList(): Promise<WorkerInfo[]> {
    const rows = await this.#all<WorkerRow>(sql`SELECT ${WORKER_COLUMNS} FROM ${workers} ORDER BY id`);
    return rows.map((row) => ({ ...row, handlerTypes: JSON.parse(row.handlerTypes) as string[] }));
  }

  backupTo(path: string, options: { overwrite: boolean }): Promise<{ path: string; bytes: number }> {
    if (this.#conn.isRemote) {
      return Promise.reject(
        new BackupRefusedError(
          "Backups write a local file, so they need a local database or one in memory, not a libSQL server.",
        ),
      );
    }
    return backupFile(path, options.overwrite, (temp) => this.#all(sql`VACUUM INTO ${temp}`).then(() => {}));
  }

  async taskLogAppend(entries: readonly TaskLogEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const rows = JSON.stringify(entries.map((entry) => [
      entry.taskId,
      entry.at,
      entry.level,
      entry.message,
      entry.details === undefined ? null : JSON.stringify(entry.details),
    ]));
    await this.#all(sql`
      INSERT INTO ${taskLogs} (task_id, at, level, message, details)
      SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(${rows})`);
  }

  async taskLogList(taskId: number): Promise<TaskLog[]> {
    const rows = await this.#all<TaskLogRow>(sql`
      SELECT ${LOG_COLUMNS} FROM ${taskLogs} WHERE task_id = ${taskId} ORDER BY id`);
    return rows.map((row) => ({
      id: row.id,
      taskId: row.taskId,
      at: row.at,
      level: row.level,
      message: row.message,
      details: row.details === null ? undefined : JSON.parse(row.details),
    }));
  }

  watchCommits(listener: () => void): () => void {
    return this.#conn.watchCommits(listener);
  }

  close(): void {
    this.#conn.release();
  }
}
