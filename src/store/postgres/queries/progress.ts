/**
 * A running task's progress (`ctx.progress()`), fenced by the lease token like a heartbeat. It stays with
 * the task once it finishes.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { Fence } from "../../store.ts";
import type { PgConnection } from "../connection.ts";

/** Sets a running task's progress (JSON text) under its fence; false when the fence no longer holds. */
export async function setProgress(
  conn: PgConnection,
  fence: Fence,
  progress: string,
  now: number,
): Promise<boolean> {
  // As text, then JSON: bound as json, the driver would encode the text again.
  const rows = await conn.rows(sql`
    UPDATE task_queue SET progress = (${progress}::text)::json, updated_at = ${now}::bigint
    WHERE id = ${fence.id}::bigint AND lease_token = ${fence.leaseToken}::text AND status = 'running'
    RETURNING id`);
  return rows.length === 1;
}
