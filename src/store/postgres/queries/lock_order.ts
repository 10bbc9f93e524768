/**
 * Row locks taken in one order. Writes that change many tasks (a worker's grouped outcomes, its heartbeat,
 * its hand-back at shutdown) could otherwise lock the same rows in different orders, wait for each other,
 * and be rolled back as a deadlock (40P01) to be made again. An UPDATE locks rows in the order its plan
 * meets them: for these, joined to arrays of ids read with `unnest`, the order of the arrays, which the
 * store therefore sorts by id (a plan that read the table first would lock them in the table's order: the
 * planner picks that rarely, for these statements never in the tests). A transaction of several such
 * statements would lock statement by statement, so it first locks all its tasks by ascending id in one
 * statement (a lock of its own for each task: about a microsecond of the server's time, which a write of
 * one statement is spared). Claims need none of this: they skip locked rows rather than wait for them.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import { p, PreparedSql, type Statement } from "../sql.ts";

// The lock an UPDATE that leaves the key alone takes, so that the write's own update does not strengthen
// it, and an insert of a log line (whose foreign key shares the row's key) is not held up. One row back,
// whatever the number locked.
const LOCK_IN_ID_ORDER = new PreparedSql(sql`
  SELECT count(*) AS locked FROM (
    SELECT 1 FROM task_queue WHERE id = ANY(${p("ids")}::bigint[]) ORDER BY id FOR NO KEY UPDATE
  ) AS l`);

/** Locks the tasks `ids` (any order, repeats allowed) by ascending id; put first in the write's transaction. */
export function lockInIdOrder(ids: readonly number[]): Statement {
  return LOCK_IN_ID_ORDER.bind({ ids: [...new Set(ids)].sort((a, b) => a - b) });
}
