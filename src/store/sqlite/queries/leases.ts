/**
 * Leases: extending them while handlers run (one task, or all of a worker's in its heartbeat), handing
 * tasks back unstarted at shutdown, and reaping the leases of workers that stopped renewing them. Each
 * write is fenced by the lease token.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { TaskStatus } from "../../../task.ts";
import type { ExpiredLease, Fence, LostLease, WorkerInfo } from "../../store.ts";
import type { Connection } from "../connection.ts";
import { all, batch, bound, fencesJson } from "../sql.ts";
import { cancelDependentsOfFinishedAt } from "./dependencies.ts";
import { workerUpsert } from "./workers.ts";

/** Hands `fences`' tasks back to the queue, due now, their attempts not counted; returns whose fence held. */
export async function releaseMany(
  conn: Connection,
  fences: readonly Fence[],
  now: number,
): Promise<Set<number>> {
  if (fences.length === 0) return new Set();
  const rows = await all<{ id: number }>(
    conn,
    sql`
      UPDATE task_queue SET
        status = 'queued', attempts = max(attempts - (started_at IS NOT NULL), 0),
        run_after = min(run_after, ${now}), lease_until = NULL, lease_token = NULL, updated_at = ${now}
      FROM json_each(${fencesJson(fences)}) AS f
      WHERE task_queue.id = f.value ->> 0 AND task_queue.lease_token = f.value ->> 1
        AND task_queue.status = 'running'
      RETURNING task_queue.id AS id`,
  );
  return new Set(rows.map((row) => Number(row.id)));
}

/** Moves one task's lease to `leaseUntil`; false when its fence no longer holds. */
export async function extendLease(conn: Connection, fence: Fence, leaseUntil: number): Promise<boolean> {
  const rows = await all<{ id: number }>(
    conn,
    sql`
      UPDATE task_queue SET lease_until = ${leaseUntil}
      WHERE id = ${fence.id} AND lease_token = ${fence.leaseToken} AND status = 'running'
      RETURNING id`,
  );
  return rows.length === 1;
}

/**
 * A worker's heartbeat: its row in `workers` (when given) and the leases of its tasks, in one transaction;
 * returns the tasks whose lease it no longer holds, with their status now.
 */
export async function heartbeat(
  conn: Connection,
  worker: WorkerInfo | null,
  fences: readonly Fence[],
  leaseUntil: number,
): Promise<LostLease[]> {
  const upsert = worker && workerUpsert(worker);
  if (fences.length === 0) {
    if (upsert) await all(conn, upsert);
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
  const results = await batch(conn, upsert ? [upsert, extend, current] : [extend, current]);
  const [extended, statuses] = results.slice(upsert ? 1 : 0);
  const kept = new Set((extended as { id: number }[]).map((row) => Number(row.id)));
  const statusOf = new Map((statuses as { id: number; status: TaskStatus }[]).map((r) => [r.id, r.status]));
  return fences.filter((fence) => !kept.has(fence.id)).map((fence) => ({
    id: fence.id,
    status: statusOf.get(fence.id) ?? "deleted",
  }));
}

/** Up to `limit` leases that expired before `now`, the oldest first. */
export async function expiredLeases(conn: Connection, now: number, limit: number): Promise<ExpiredLease[]> {
  return await all<ExpiredLease>(
    conn,
    sql`
      SELECT id, lease_token AS "leaseToken", lease_until AS "leaseUntil" FROM task_queue
      WHERE status = 'running' AND lease_until < ${now}
      ORDER BY lease_until LIMIT ${bound(limit)}`,
  );
}

/**
 * Takes expired leases back (`only` those, when given, and only if unchanged since): a task whose attempts
 * are used up fails, every other one is queued again.
 */
export async function reapExpired(
  conn: Connection,
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
  // have started in the moment its worker died, so from now until an outcome of it is recorded, each of
  // its starts is recorded before its handler runs: a task that kills its worker every time is charged
  // for every death but this one.
  // The tasks failed here cancel what waits on them, in the same transaction.
  const [failed, requeued] = await batch(conn, [
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
    cancelDependentsOfFinishedAt(now),
  ]);
  return { requeued: requeued!.length, failed: failed!.length };
}
