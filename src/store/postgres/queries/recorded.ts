/**
 * Outcomes a call wrote once already: an outcome write is made again when its connection was lost under
 * it (see `reconnect.ts`), and when the first try had committed, the repeat finds the lease ended by it and
 * its fence no longer holding. Rather than report such a task lost, the store reads what its row holds now:
 * the outcome the call wrote, exactly (status, due time, message), at one of the times the call wrote
 * with, is the call's own. Another worker's outcome could match only by writing the same outcome in the
 * same millisecond as one of this call's tries; it would then be recorded as this one wanted all the same.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { Finish } from "../../store.ts";
import type { PgConnection } from "../connection.ts";
import { array } from "../sql.ts";

interface Row {
  id: number;
  status: string;
  runAfter: number;
  errorMessage: string | null;
  updatedAt: number;
}

/**
 * Which of `finishes` (whose fences did not hold on the last try) their rows show written by an earlier try
 * of the same call, made at one of the times in `tried`.
 */
export async function ownOutcomes(
  conn: PgConnection,
  finishes: readonly Finish[],
  tried: readonly number[],
): Promise<Set<number>> {
  if (finishes.length === 0) return new Set();
  const rows = await conn.rows<Row>(sql`
    SELECT id, status, run_after AS "runAfter", error_message AS "errorMessage", updated_at AS "updatedAt"
    FROM task_queue WHERE id = ANY(${array(finishes.map((finish) => finish.id))}::bigint[])`);
  const byId = new Map(rows.map((row) => [row.id, row]));
  const own = new Set<number>();
  for (const finish of finishes) {
    const row = byId.get(finish.id);
    // A snooze writes the task queued, its message left as it was.
    const status = finish.status === "snoozed" ? "queued" : finish.status;
    if (!row || row.status !== status || !tried.includes(row.updatedAt)) continue;
    if (
      (finish.status === "queued" || finish.status === "failed") && row.errorMessage !== finish.errorMessage
    ) {
      continue;
    }
    if ((finish.status === "queued" || finish.status === "snoozed") && row.runAfter !== finish.runAfter) {
      continue;
    }
    own.add(finish.id);
  }
  return own;
}
