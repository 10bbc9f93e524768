/**
 * A running task's progress (`ctx.progress()`), fenced by the lease token like a heartbeat. It stays with
 * the task once it finishes.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { Fence } from "../../store.ts";
import type { Connection } from "../connection.ts";
import { p, PreparedSql } from "../sql.ts";

const SET_PROGRESS = new PreparedSql(sql`
  UPDATE task_queue SET progress = ${p("progress")}, updated_at = ${p("now")}
  WHERE id = ${p("id")} AND lease_token = ${p("token")} AND status = 'running'
  RETURNING id`);

/** Sets a running task's progress (JSON text) under its fence; false when the fence no longer holds. */
export async function setProgress(
  conn: Connection,
  fence: Fence,
  progress: string,
  now: number,
): Promise<boolean> {
  const bound = SET_PROGRESS.bind({ id: fence.id, token: fence.leaseToken, progress, now });
  return (await conn.execute(bound)).rows.length === 1;
}
