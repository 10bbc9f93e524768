/**
 * The `workers` table: one row per running worker, written by its heartbeat, listed by `prismq workers`,
 * deleted when it stops and pruned when its heartbeat is long gone.
 *
 * @module
 */
import { type SQL, sql } from "drizzle-orm";
import type { WorkerInfo } from "../../store.ts";
import { columnsOf } from "../columns.ts";
import type { PgConnection } from "../connection.ts";
import { workers } from "../schema.ts";

const WORKER_COLUMNS = columnsOf(workers);

/** The statement that writes `worker`'s row, new or not (its heartbeat sends it with the leases). */
export function workerUpsert(worker: WorkerInfo): SQL {
  return sql`
    INSERT INTO workers (id, host, pid, started_at, heartbeat_at, concurrency, handler_types)
    VALUES (${worker.id}::text, ${worker.host}::text, ${worker.pid}::bigint, ${worker.startedAt}::bigint,
      ${worker.heartbeatAt}::bigint, ${worker.concurrency}::bigint,
      (${JSON.stringify(worker.handlerTypes)}::text)::json)
    ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
      heartbeat_at = excluded.heartbeat_at, concurrency = excluded.concurrency,
      handler_types = excluded.handler_types`;
}

export async function deleteWorker(conn: PgConnection, id: string): Promise<void> {
  await conn.rows(sql`DELETE FROM workers WHERE id = ${id}::text`);
}

/** Deletes the workers whose last heartbeat is older than `heartbeatBefore`; returns their ids, sorted. */
export async function pruneWorkers(conn: PgConnection, heartbeatBefore: number): Promise<string[]> {
  const rows = await conn.rows<{ id: string }>(
    sql`DELETE FROM workers WHERE heartbeat_at < ${heartbeatBefore}::bigint RETURNING id`,
  );
  return rows.map((row) => row.id).sort();
}

export async function listWorkers(conn: PgConnection): Promise<WorkerInfo[]> {
  const rows = await conn.rows<Omit<WorkerInfo, "handlerTypes"> & { handlerTypes: string }>(
    sql`SELECT ${WORKER_COLUMNS} FROM workers ORDER BY id`,
  );
  return rows.map((row) => ({ ...row, handlerTypes: JSON.parse(row.handlerTypes) as string[] }));
}
