/**
 * Snoozes: a handler asked for its task to run again later (`SnoozeError`). The task goes back to the
 * queue, due at the time asked, with the attempt given back as a release gives it back (a start not yet
 * recorded was never counted), and its last error message kept: a snooze is not a failure. The handler
 * returned, so a start left unconfirmed by a dead worker is confirmed. Fenced by the lease token.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { Finish } from "../../store.ts";
import type { SqlStatement } from "../driver.ts";
import { p, PreparedSql } from "../sql.ts";

/** Snoozes as `[[id, lease token, run after], …]`. */
const SNOOZE_MANY = new PreparedSql(sql`
  UPDATE task_queue SET
    status = 'queued', run_after = f.value ->> 2, attempts = max(attempts - (started_at IS NOT NULL), 0),
    unconfirmed_start = 0, lease_until = NULL, lease_token = NULL, updated_at = ${p("now")}
  FROM json_each(${p("snoozes")}) AS f
  WHERE task_queue.id = f.value ->> 0 AND task_queue.lease_token = f.value ->> 1
    AND task_queue.status = 'running'
  RETURNING task_queue.id AS id`);

/** The statement that records snoozes; their ids come back when the fence held. */
export function snoozeMany(finishes: readonly Finish[], now: number): SqlStatement {
  const snoozes = finishes.map((finish) => [
    finish.id,
    finish.leaseToken,
    finish.status === "snoozed" ? finish.runAfter : null,
  ]);
  return SNOOZE_MANY.bind({ now, snoozes: JSON.stringify(snoozes) });
}
