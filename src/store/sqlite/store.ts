/**
 * The Store on libSQL (SQLite), written with Drizzle. Every write is one statement, or one batch whose
 * first statement writes, so SQLite takes the write lock before it reads anything (the same effect as
 * `BEGIN IMMEDIATE`); the one read-then-write transaction, migration, uses `BEGIN IMMEDIATE` itself.
 *
 * @module
 */
import { and, asc, count, desc, eq, gte, inArray, lt, lte, min, type SQL, sql } from "drizzle-orm";
import { DatabaseError, TaskNotFoundError, TaskStateError } from "../../errors.ts";
import { type Task, TASK_STATUSES, type TaskEvent, type TaskStatus, TRANSITIONS } from "../../task.ts";
import type {
  ClaimParams,
  ClaimStrategy,
  Fence,
  Finish,
  InsertedTask,
  LeasedTask,
  ListFilter,
  LostLease,
  NewTask,
  QueueStats,
  SqlTransaction,
  Store,
  TaskLog,
  TaskLogEntry,
  WorkerInfo,
} from "../store.ts";
import type { Connection } from "./connection.ts";
import { MIGRATIONS } from "./migrations.ts";
import { taskLogs, taskQueue, type TaskRow, workers } from "./schema.ts";

/** Rows per INSERT statement: well under SQLite's 32,766 bound parameters. */
const INSERT_CHUNK = 500;
/** Weighted-random claims draw from this many best-priority candidates, so a claim never scans the queue. */
const WEIGHTED_CANDIDATES = 1000;

/** The statuses an event may start from, as a condition on `status`: the store's side of `TRANSITIONS`. */
function statusAllows(event: TaskEvent): SQL {
  return inArray(taskQueue.status, [...TRANSITIONS[event].from]);
}

function toTask(row: TaskRow): Task {
  return {
    id: row.id,
    type: row.type,
    payload: JSON.parse(row.payload),
    status: row.status,
    priority: row.priority,
    attempts: row.attempts,
    maxAttempts: row.maxAttempts,
    errorMessage: row.errorMessage,
    idempotencyKey: row.idempotencyKey,
    lockedBy: row.lockedBy,
    timeoutMs: row.timeoutMs,
    runAfter: row.runAfter,
    leaseUntil: row.leaseUntil,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
  };
}

function fencesJson(fences: readonly Fence[]): string {
  return JSON.stringify(fences.map((fence) => [fence.id, fence.leaseToken]));
}

export class SqliteStore implements Store {
  readonly #conn: Connection;
  readonly #claimQueries = new Map<string, ReturnType<SqliteStore["prepareClaim"]>>();

  constructor(connection: Connection) {
    this.#conn = connection;
  }

  get #db() {
    return this.#conn.db;
  }

  migrate(now: number): Promise<number[]> {
    return this.#conn.transaction(async (tx) => {
      await tx.execute(
        "CREATE TABLE IF NOT EXISTS prismq_migrations " +
          "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
      );
      const rows = (await tx.execute("SELECT version FROM prismq_migrations")).rows;
      const applied = new Set(rows.map((row) => Number(row.version)));
      const newest = Math.max(0, ...applied);
      const known = MIGRATIONS[MIGRATIONS.length - 1].version;
      if (newest > known) {
        throw new DatabaseError(
          `This database was migrated by a newer PrismQ (schema version ${newest}; this one knows up to ` +
            `${known}). Upgrade PrismQ to use it.`,
        );
      }
      const done: number[] = [];
      for (const migration of MIGRATIONS) {
        if (applied.has(migration.version)) continue;
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
    return this.#conn.transaction((tx) =>
      fn({
        async execute(text, args = []) {
          const result = await tx.execute({ sql: text, args: args as never });
          return {
            rows: result.rows.map((row) => Object.fromEntries(result.columns.map((c, i) => [c, row[i]]))),
            rowsAffected: result.rowsAffected,
            lastInsertRowid: result.lastInsertRowid === undefined
              ? undefined
              : Number(result.lastInsertRowid),
          };
        },
      })
    );
  }

  async taskInsertMany(tasks: readonly NewTask[], now: number): Promise<InsertedTask[]> {
    if (tasks.length === 0) return [];
    const inserts = [];
    for (let i = 0; i < tasks.length; i += INSERT_CHUNK) {
      const values = tasks.slice(i, i + INSERT_CHUNK).map((task) => ({
        ...task,
        status: "queued" as const,
        createdAt: now,
        updatedAt: now,
      }));
      inserts.push(
        // No conflict target: Drizzle cannot name a partial index in one, and the idempotency key is the
        // only unique column an insert can collide on (ids are assigned).
        this.#db.insert(taskQueue).values(values).onConflictDoNothing().returning(),
      );
    }
    const keys = [...new Set(tasks.flatMap((task) => task.idempotencyKey ?? []))];
    const existing = keys.length === 0 ? undefined : this.#db.select().from(taskQueue).where(
      inArray(taskQueue.idempotencyKey, keys),
    );
    // One transaction: either every task goes in, or none does.
    const [first, ...rest] = inserts;
    const results = await this.#conn.run(() =>
      this.#db.batch([first, ...rest, ...(existing ? [existing] : [])])
    );
    const insertedRows = (results.slice(0, inserts.length) as TaskRow[][]).flat();
    const byKey = new Map<string, TaskRow>();
    for (const row of existing ? results[results.length - 1] as TaskRow[] : []) {
      byKey.set(row.idempotencyKey!, row);
    }
    const insertedKeyed = new Set(insertedRows.flatMap((row) => row.idempotencyKey ?? []));
    // SQLite returns inserted rows in no promised order, but ids grow in insertion order.
    const unkeyed = insertedRows.filter((row) => row.idempotencyKey === null).sort((a, b) => a.id - b.id);
    let nextUnkeyed = 0;
    return tasks.map((task) => {
      if (task.idempotencyKey === null) return { task: toTask(unkeyed[nextUnkeyed++]), created: true };
      const row = byKey.get(task.idempotencyKey)!;
      // Only the first of several tasks with one key in this call created it.
      const created = insertedKeyed.delete(task.idempotencyKey);
      return { task: toTask(row), created };
    });
  }

  async taskGet(id: number): Promise<Task | undefined> {
    const rows = await this.#conn.run(() => this.#db.select().from(taskQueue).where(eq(taskQueue.id, id)));
    return rows[0] && toTask(rows[0]);
  }

  async taskList(filter: ListFilter): Promise<Task[]> {
    const rows = await this.#conn.run(() =>
      this.#db.select().from(taskQueue)
        .where(and(
          filter.status ? eq(taskQueue.status, filter.status) : undefined,
          filter.type ? eq(taskQueue.type, filter.type) : undefined,
        ))
        .orderBy(desc(taskQueue.id)).limit(filter.limit).offset(filter.offset)
    );
    return rows.map(toTask);
  }

  prepareClaim(strategy: ClaimStrategy, types: readonly string[] | undefined) {
    const runnable = and(
      eq(taskQueue.status, "queued"),
      lte(taskQueue.runAfter, sql.placeholder("now")),
      types ? inArray(taskQueue.type, [...types]) : undefined,
    );
    const candidates = (() => {
      const select = this.#db.select({ id: taskQueue.id }).from(taskQueue).where(runnable);
      switch (strategy) {
        case "priority":
          return select.orderBy(asc(taskQueue.priority), asc(taskQueue.id)).limit(sql.placeholder("limit"));
        case "fifo":
          return select.orderBy(asc(taskQueue.id)).limit(sql.placeholder("limit"));
        case "lifo":
          return select.orderBy(desc(taskQueue.id)).limit(sql.placeholder("limit"));
        case "weighted_random": {
          const pool = this.#db.select({ id: taskQueue.id, priority: taskQueue.priority }).from(taskQueue)
            .where(runnable).orderBy(asc(taskQueue.priority), asc(taskQueue.id)).limit(WEIGHTED_CANDIDATES)
            .as("pool");
          // Exponential race: a task's chance to come first is proportional to 1 / (1 + priority).
          const race = sql`-ln((abs(random()) % 1000000 + 1) / 1000000.0) * (1 + max(${pool.priority}, 0))`;
          return this.#db.select({ id: pool.id }).from(pool).orderBy(race).limit(sql.placeholder("limit"));
        }
      }
    })();
    return this.#db.update(taskQueue).set({
      status: "running",
      attempts: sql`${taskQueue.attempts} + 1`,
      lockedBy: sql`${sql.placeholder("workerId")}`,
      leaseToken: sql`lower(hex(randomblob(12)))`,
      leaseUntil: sql`${sql.placeholder("leaseUntil")}`,
      startedAt: sql`${sql.placeholder("now")}`,
      updatedAt: sql`${sql.placeholder("now")}`,
    }).where(and(inArray(taskQueue.id, candidates), statusAllows("claim"))).returning().prepare();
  }

  async taskClaim(params: ClaimParams): Promise<LeasedTask[]> {
    const key = `${params.strategy}\u0000${params.types?.join("\u0000") ?? "*"}`;
    let claim = this.#claimQueries.get(key);
    if (!claim) this.#claimQueries.set(key, claim = this.prepareClaim(params.strategy, params.types));
    const query = claim;
    const rows = await this.#conn.run(() =>
      query.all({
        now: params.now,
        limit: params.limit,
        workerId: params.workerId,
        leaseUntil: params.now + params.leaseMs,
      })
    );
    const order: Record<ClaimStrategy, (a: TaskRow, b: TaskRow) => number> = {
      priority: (a, b) => a.priority - b.priority || a.id - b.id,
      fifo: (a, b) => a.id - b.id,
      lifo: (a, b) => b.id - a.id,
      weighted_random: () => 0,
    };
    return rows.sort(order[params.strategy]).map((row) => ({
      task: toTask(row),
      leaseToken: row.leaseToken!,
    }));
  }

  async taskFinishMany(finishes: readonly Finish[], now: number): Promise<Set<number>> {
    if (finishes.length === 0) return new Set();
    const json = JSON.stringify(finishes.map((finish) => [
      finish.id,
      finish.leaseToken,
      finish.status,
      finish.status === "queued" ? finish.runAfter : null,
      finish.status === "completed" ? null : finish.errorMessage,
    ]));
    // One statement for any mix of outcomes; the lease token fences out a worker that lost the task.
    const rows = await this.#conn.run(() =>
      this.#db.all<{ id: number }>(sql`
        UPDATE task_queue SET
          status = f.value ->> 2,
          run_after = CASE WHEN f.value ->> 2 = 'queued' THEN f.value ->> 3 ELSE run_after END,
          error_message = CASE WHEN f.value ->> 2 = 'completed' THEN error_message ELSE f.value ->> 4 END,
          finished_at = CASE WHEN f.value ->> 2 = 'queued' THEN NULL ELSE ${now} END,
          lease_until = NULL, lease_token = NULL, updated_at = ${now}
        FROM json_each(${json}) AS f
        WHERE task_queue.id = f.value ->> 0 AND task_queue.lease_token = f.value ->> 1
          AND task_queue.status = 'running'
        RETURNING task_queue.id AS id`)
    );
    return new Set(rows.map((row) => Number(row.id)));
  }

  async taskReleaseMany(fences: readonly Fence[], now: number): Promise<Set<number>> {
    if (fences.length === 0) return new Set();
    const rows = await this.#conn.run(() =>
      this.#db.all<{ id: number }>(sql`
        UPDATE task_queue SET
          status = 'queued', attempts = max(attempts - 1, 0), run_after = ${now},
          lease_until = NULL, lease_token = NULL, updated_at = ${now}
        FROM json_each(${fencesJson(fences)}) AS f
        WHERE task_queue.id = f.value ->> 0 AND task_queue.lease_token = f.value ->> 1
          AND task_queue.status = 'running'
        RETURNING task_queue.id AS id`)
    );
    return new Set(rows.map((row) => Number(row.id)));
  }

  async taskExtendLease(fence: Fence, leaseUntil: number, _now: number): Promise<boolean> {
    const rows = await this.#conn.run(() =>
      this.#db.update(taskQueue).set({ leaseUntil })
        .where(and(
          eq(taskQueue.id, fence.id),
          eq(taskQueue.leaseToken, fence.leaseToken),
          eq(taskQueue.status, "running"),
        ))
        .returning({ id: taskQueue.id })
    );
    return rows.length === 1;
  }

  async taskReapExpired(now: number): Promise<{ requeued: number; failed: number }> {
    const expired = and(eq(taskQueue.status, "running"), lt(taskQueue.leaseUntil, now));
    const reason =
      sql`'lease expired: worker ' || coalesce(${taskQueue.lockedBy}, '?') || ' stopped renewing it'`;
    const cleared = { leaseUntil: null, leaseToken: null, updatedAt: now };
    const [failed, requeued] = await this.#conn.run(() =>
      this.#db.batch([
        this.#db.update(taskQueue)
          .set({ ...cleared, status: "failed", errorMessage: reason, finishedAt: now })
          .where(and(expired, sql`${taskQueue.attempts} >= ${taskQueue.maxAttempts}`))
          .returning({ id: taskQueue.id }),
        this.#db.update(taskQueue)
          .set({ ...cleared, status: "queued", errorMessage: reason, runAfter: now })
          .where(expired)
          .returning({ id: taskQueue.id }),
      ])
    );
    return { requeued: requeued.length, failed: failed.length };
  }

  async taskCancel(id: number, now: number): Promise<Task> {
    const rows = await this.#conn.run(() =>
      this.#db.update(taskQueue)
        .set({ status: "cancelled", finishedAt: now, updatedAt: now, leaseUntil: null, leaseToken: null })
        .where(and(eq(taskQueue.id, id), statusAllows("cancel")))
        .returning()
    );
    if (rows[0]) return toTask(rows[0]);
    throw await this.#explainRefusal(id, "cancel");
  }

  async taskRequeue(id: number, now: number): Promise<Task> {
    const rows = await this.#conn.run(() =>
      this.#db.update(taskQueue)
        .set({ status: "queued", attempts: 0, runAfter: now, finishedAt: null, updatedAt: now })
        .where(and(eq(taskQueue.id, id), statusAllows("requeue")))
        .returning()
    );
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
    const rows = await this.#conn.run(() =>
      this.#db.update(taskQueue)
        .set({ status: "queued", attempts: 0, runAfter: now, finishedAt: null, updatedAt: now })
        .where(and(eq(taskQueue.status, "failed"), type === undefined ? undefined : eq(taskQueue.type, type)))
        .returning({ id: taskQueue.id })
    );
    return rows.length;
  }

  async taskPurge(statuses: readonly TaskStatus[], finishedBefore: number): Promise<number> {
    const rows = await this.#conn.run(() =>
      this.#db.delete(taskQueue)
        .where(and(inArray(taskQueue.status, [...statuses]), lt(taskQueue.finishedAt, finishedBefore)))
        .returning({ id: taskQueue.id })
    );
    return rows.length;
  }

  async taskStats(now: number): Promise<QueueStats> {
    const [perTypeStatus, oldest, recent] = await this.#conn.run(() =>
      this.#db.batch([
        this.#db.select({ type: taskQueue.type, status: taskQueue.status, n: count() }).from(taskQueue)
          .groupBy(taskQueue.type, taskQueue.status),
        this.#db.select({ runAfter: min(taskQueue.runAfter) }).from(taskQueue)
          .where(and(eq(taskQueue.status, "queued"), lte(taskQueue.runAfter, now))),
        this.#db.select({ status: taskQueue.status, n: count() }).from(taskQueue)
          .where(
            and(inArray(taskQueue.status, ["completed", "failed"]), gte(taskQueue.finishedAt, now - 60_000)),
          )
          .groupBy(taskQueue.status),
      ])
    );
    const zero = () => Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
    const counts = zero();
    const byType: Record<string, Record<TaskStatus, number>> = {};
    for (const { type, status, n } of perTypeStatus) {
      counts[status] += n;
      (byType[type] ??= zero())[status] = n;
    }
    const lastMinute = { completed: 0, failed: 0 };
    for (const { status, n } of recent) lastMinute[status as "completed" | "failed"] = n;
    const oldestRunAfter = oldest[0]?.runAfter;
    return {
      counts,
      byType,
      oldestQueuedAgeMs: oldestRunAfter == null ? null : Math.max(0, now - oldestRunAfter),
      lastMinute,
    };
  }

  async taskPending(now: number, types?: readonly string[]): Promise<{ runnable: number; running: number }> {
    const ofTypes = types ? inArray(taskQueue.type, [...types]) : undefined;
    const runnable = and(eq(taskQueue.status, "queued"), lte(taskQueue.runAfter, now), ofTypes);
    const running = and(eq(taskQueue.status, "running"), ofTypes);
    const [row] = await this.#conn.run(() =>
      this.#db.all<{ runnable: number; running: number }>(sql`
        SELECT EXISTS (SELECT 1 FROM task_queue WHERE ${runnable}) AS runnable,
               EXISTS (SELECT 1 FROM task_queue WHERE ${running}) AS running`)
    );
    return { runnable: Number(row.runnable), running: Number(row.running) };
  }

  async workerHeartbeat(
    worker: WorkerInfo | null,
    fences: readonly Fence[],
    leaseUntil: number,
  ): Promise<LostLease[]> {
    const upsert = worker && this.#workerUpsert(worker);
    if (fences.length === 0) {
      if (upsert) await this.#conn.run(() => upsert);
      return [];
    }
    const json = fencesJson(fences);
    const extend = this.#db.all<{ id: number }>(sql`
      UPDATE task_queue SET lease_until = ${leaseUntil}
      FROM json_each(${json}) AS f
      WHERE task_queue.id = f.value ->> 0 AND task_queue.lease_token = f.value ->> 1
        AND task_queue.status = 'running'
      RETURNING task_queue.id AS id`);
    const current = this.#db.select({ id: taskQueue.id, status: taskQueue.status }).from(taskQueue)
      .where(inArray(taskQueue.id, fences.map((fence) => fence.id)));
    const [extended, statuses] = await this.#conn.run(async () => {
      if (!upsert) return await this.#db.batch([extend, current]);
      const [, ...rest] = await this.#db.batch([upsert, extend, current]);
      return rest;
    });
    const kept = new Set((extended as { id: number }[]).map((row) => Number(row.id)));
    const statusOf = new Map((statuses as { id: number; status: TaskStatus }[]).map((r) => [r.id, r.status]));
    return fences.filter((fence) => !kept.has(fence.id)).map((fence) => ({
      id: fence.id,
      status: statusOf.get(fence.id) ?? "deleted",
    }));
  }

  #workerUpsert(worker: WorkerInfo) {
    const row = { ...worker, handlerTypes: JSON.stringify(worker.handlerTypes) };
    return this.#db.insert(workers).values(row).onConflictDoUpdate({
      target: workers.id,
      set: {
        host: row.host,
        pid: row.pid,
        heartbeatAt: row.heartbeatAt,
        concurrency: row.concurrency,
        handlerTypes: row.handlerTypes,
      },
    });
  }

  async workerDelete(id: string): Promise<void> {
    await this.#conn.run(() => this.#db.delete(workers).where(eq(workers.id, id)));
  }

  async workerList(): Promise<WorkerInfo[]> {
    const rows = await this.#conn.run(() => this.#db.select().from(workers).orderBy(asc(workers.id)));
    return rows.map((row) => ({ ...row, handlerTypes: JSON.parse(row.handlerTypes) as string[] }));
  }

  async taskLogAppend(entries: readonly TaskLogEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.#conn.run(() =>
      this.#db.insert(taskLogs).values(entries.map((entry) => ({
        taskId: entry.taskId,
        at: entry.at,
        level: entry.level,
        message: entry.message,
        details: entry.details === undefined ? null : JSON.stringify(entry.details),
      })))
    );
  }

  async taskLogList(taskId: number): Promise<TaskLog[]> {
    const rows = await this.#conn.run(() =>
      this.#db.select().from(taskLogs).where(eq(taskLogs.taskId, taskId)).orderBy(asc(taskLogs.id))
    );
    return rows.map((row) => ({
      id: row.id,
      taskId: row.taskId,
      at: row.at,
      level: row.level,
      message: row.message,
      details: row.details === null ? undefined : JSON.parse(row.details),
    }));
  }

  close(): void {
    this.#conn.close();
  }
}
