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
import { p, PreparedSql, type Statement } from "../sql.ts";

const SNOOZE_MANY = new PreparedSql(sql`
  UPDATE task_queue t SET
    status = 'queued', run_after = f.run_after,
    attempts = greatest(t.attempts - CASE WHEN t.started_at IS NOT NULL THEN 1 ELSE 0 END, 0),
    unconfirmed_start = false, lease_until = NULL, lease_token = NULL, updated_at = ${p("now")}::bigint
  FROM unnest(${p("ids")}::bigint[], ${p("tokens")}::text[], ${p("runAfters")}::bigint[])
    AS f(id, token, run_after)
  WHERE t.id = f.id AND t.lease_token = f.token AND t.status = 'running'
  RETURNING t.id`);

/** The statement that records snoozes; their ids come back when the fence held. */
export function snoozeMany(finishes: readonly Finish[], now: number): Statement {
  return SNOOZE_MANY.bind({
    now,
    ids: finishes.map((finish) => finish.id),
    tokens: finishes.map((finish) => finish.leaseToken),
    runAfters: finishes.map((finish) => finish.status === "snoozed" ? finish.runAfter : null),
  });
}
