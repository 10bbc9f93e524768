/**
 * The `workers` table: one row per running worker, written by its heartbeat, listed by `prismq workers`,
 * deleted when it stops and pruned when its heartbeat is long gone.
 *
 * @module
 */
import { type SQL, sql } from "drizzle-orm";
import type { WorkerInfo } from "../../store.ts";
import { columnsOf } from "../columns.ts";
import type { Connection } from "../connection.ts";
import { type WorkerRow, workers } from "../schema.ts";
import { all } from "../sql.ts";

const WORKER_COLUMNS = columnsOf(workers);

/** The statement that writes `worker`'s row, new or not (its heartbeat sends it with the leases). */
export function workerUpsert(worker: WorkerInfo): SQL {
  return sql`
    INSERT INTO ${workers} (id, host, pid, started_at, heartbeat_at, concurrency, handler_types)
    VALUES (${worker.id}, ${worker.host}, ${worker.pid}, ${worker.startedAt}, ${worker.heartbeatAt},
      ${worker.concurrency}, ${JSON.stringify(worker.handlerTypes)})
    ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
      heartbeat_at = excluded.heartbeat_at, concurrency = excluded.concurrency,
      handler_types = excluded.handler_types`;
}

export async function deleteWorker(conn: Connection, id: string): Promise<void> {
  await all(conn, sql`DELETE FROM ${workers} WHERE ${workers.id} = ${id}`);
}

/** Deletes the workers whose last heartbeat is older than `heartbeatBefore`; returns their ids, sorted. */
export async function pruneWorkers(conn: Connection, heartbeatBefore: number): Promise<string[]> {
  const rows = await all<{ id: string }>(
    conn,
    sql`DELETE FROM ${workers} WHERE ${workers.heartbeatAt} < ${heartbeatBefore} RETURNING id`,
  );
  return rows.map((row) => row.id).sort();
}

export async function listWorkers(conn: Connection): Promise<WorkerInfo[]> {
  const rows = await all<WorkerRow>(conn, sql`SELECT ${WORKER_COLUMNS} FROM ${workers} ORDER BY id`);
  return rows.map((row) => ({ ...row, handlerTypes: JSON.parse(row.handlerTypes) as string[] }));
}
