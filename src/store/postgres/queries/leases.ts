/**
 * Leases: extending them while handlers run (one task, or all of a worker's in its heartbeat), handing
 * tasks back unstarted at shutdown, and reaping the leases of workers that stopped renewing them. Each
 * write is fenced by the lease token.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import { cancelDependentsOfFinishedAt } from "./dependencies.ts";
import type { TaskStatus } from "../../../task.ts";
import type { ExpiredLease, Fence, LostLease, WorkerInfo } from "../../store.ts";
import type { PgConnection } from "../connection.ts";
import { array, fenceArrays } from "../sql.ts";
import { workerUpsert } from "./workers.ts";

/** `unnest` of fences as rows `f(id, token)`, by ascending id: an UPDATE joined to them locks rows so. */
function fenceRows(fences: readonly Fence[]) {
  const [ids, tokens] = fenceArrays([...fences].sort((a, b) => a.id - b.id));
  return sql`unnest(${array(ids)}::bigint[], ${array(tokens)}::text[]) AS f(id, token)`;
}

/**
 * Hands `fences`' tasks back to the queue, due now, their attempts not counted (locked by ascending id);
 * returns whose fence held.
 */
export async function releaseMany(
  conn: PgConnection,
  fences: readonly Fence[],
  now: number,
): Promise<Set<number>> {
  if (fences.length === 0) return new Set();
  const rows = await conn.rows<{ id: number }>(sql`
    UPDATE task_queue t SET
      status = 'queued',
      attempts = greatest(t.attempts - CASE WHEN t.started_at IS NOT NULL THEN 1 ELSE 0 END, 0),
      run_after = least(t.run_after, ${now}::bigint), lease_until = NULL, lease_token = NULL,
      updated_at = ${now}::bigint
    FROM ${fenceRows(fences)}
    WHERE t.id = f.id AND t.lease_token = f.token AND t.status = 'running'
    RETURNING t.id`);
  return new Set(rows.map((row) => row.id));
}

/** Moves one task's lease to `leaseUntil`; false when its fence no longer holds. */
export async function extendLease(conn: PgConnection, fence: Fence, leaseUntil: number): Promise<boolean> {
  const rows = await conn.rows(sql`
    UPDATE task_queue SET lease_until = ${leaseUntil}::bigint
    WHERE id = ${fence.id}::bigint AND lease_token = ${fence.leaseToken}::text AND status = 'running'
    RETURNING id`);
  return rows.length === 1;
}

/**
 * A worker's heartbeat: its row in `workers` (when given) and the leases of its tasks (locked by ascending
 * id, as its outcome writes lock them: see lock_order.ts), in one transaction; returns the tasks whose lease it no longer holds,
 * with their status now.
 */
export async function heartbeat(
  conn: PgConnection,
  worker: WorkerInfo | null,
  fences: readonly Fence[],
  leaseUntil: number,
): Promise<LostLease[]> {
  const upsert = worker && workerUpsert(worker);
  if (fences.length === 0) {
    if (upsert) await conn.rows(upsert);
    return [];
  }
  const extend = sql`
    UPDATE task_queue t SET lease_until = ${leaseUntil}::bigint
    FROM ${fenceRows(fences)}
    WHERE t.id = f.id AND t.lease_token = f.token AND t.status = 'running'
    RETURNING t.id`;
  const current = sql`
    SELECT id, status FROM task_queue WHERE id = ANY(${array(fences.map((fence) => fence.id))}::bigint[])`;
  const results = await conn.batch(upsert ? [upsert, extend, current] : [extend, current]);
  const [extended, statuses] = results.slice(upsert ? 1 : 0) as [
    { id: number }[],
    { id: number; status: TaskStatus }[],
  ];
  const kept = new Set(extended.map((row) => row.id));
  const statusOf = new Map(statuses.map((row) => [row.id, row.status]));
  return fences.filter((fence) => !kept.has(fence.id)).map((fence) => ({
    id: fence.id,
    status: statusOf.get(fence.id) ?? "deleted",
  }));
}

/** Up to `limit` leases that expired before `now`, the oldest first. */
export async function expiredLeases(conn: PgConnection, now: number, limit: number): Promise<ExpiredLease[]> {
  return await conn.rows<ExpiredLease>(sql`
    SELECT id, lease_token AS "leaseToken", lease_until AS "leaseUntil" FROM task_queue
    WHERE status = 'running' AND lease_until < ${now}::bigint
    ORDER BY lease_until, id LIMIT ${limit}::bigint`);
}

/**
 * Takes expired leases back (`only` those, when given, and only if unchanged since): a task whose attempts
 * are used up fails, every other one is queued again. One transaction.
 */
export async function reapExpired(
  conn: PgConnection,
  now: number,
  only?: readonly ExpiredLease[],
): Promise<{ requeued: number; failed: number }> {
  const confirmed = only === undefined ? sql`` : sql`
    AND (id, lease_token, lease_until) IN (
      SELECT * FROM unnest(${array(only.map((lease) => lease.id))}::bigint[],
        ${array(only.map((lease) => lease.leaseToken))}::text[],
        ${array(only.map((lease) => lease.leaseUntil))}::bigint[])
    )`;
  const expired = sql`status = 'running' AND lease_until < ${now}::bigint ${confirmed}`;
  const reason = sql`'lease expired: worker ' || coalesce(locked_by, '?') || ' stopped renewing it'`;
  // A task claimed ahead whose start was never recorded keeps its attempts and never fails here; it may
  // have started in the moment its worker died, so from now until an outcome of it is recorded, each of
  // its starts is recorded before its handler runs.
  // The tasks failed here cancel what waits on them, in the same transaction.
  const [failed, requeued] = await conn.batch([
    sql`
      UPDATE task_queue SET status = 'failed', error_message = ${reason}, finished_at = ${now}::bigint,
        lease_until = NULL, lease_token = NULL, updated_at = ${now}::bigint
      WHERE ${expired} AND started_at IS NOT NULL AND attempts >= max_attempts
      RETURNING id`,
    sql`
      UPDATE task_queue SET status = 'queued', run_after = ${now}::bigint,
        error_message = CASE WHEN started_at IS NULL THEN error_message ELSE ${reason} END,
        unconfirmed_start = CASE WHEN started_at IS NULL THEN true ELSE unconfirmed_start END,
        lease_until = NULL, lease_token = NULL, updated_at = ${now}::bigint
      WHERE ${expired}
      RETURNING id`,
    ...cancelDependentsOfFinishedAt(now),
  ]);
  return { requeued: requeued!.length, failed: failed!.length };
}
