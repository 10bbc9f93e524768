/**
 * Dependencies: a task enqueued with `dependsOn` is `waiting` until every task it depends on has completed,
 * then `queued`; when one of them fails for good or is cancelled, it is cancelled, and so are the tasks
 * waiting on it, down the chain. The statements here go in the transaction of the write that caused them
 * (the completion, the failure, the cancel), after it.
 *
 * Many transactions run at once here, in READ COMMITTED, where each statement sees what was committed when
 * it began. Two completions of a task's last two dependencies could each see the other still running and
 * release nothing: so each first locks the waiting dependents (by ascending id, one statement), and only
 * then, in the next statement, looks at their dependencies. The second of the two waits for the first's
 * lock, so its next statement begins after the first committed, and sees both completions. An enqueue
 * locks the tasks it depends on (`FOR SHARE`), so that a dependency cannot finish between the enqueue's
 * look at it and its commit without seeing the new dependent.
 *
 * Releases and cancels are idempotent (they change only `waiting` tasks, as the statuses of their
 * dependencies say), so they take every task that may have finished, whether or not its fence held.
 *
 * @module
 */
import { type SQL, sql } from "drizzle-orm";
import { DependencyError } from "../../../errors.ts";
import type { TaskStatus } from "../../../task.ts";
import type { InsertedTask, NewTask } from "../../store.ts";
import type { SqlRunner } from "../app_transaction.ts";
import { array, compile, p, PreparedSql, type Statement } from "../sql.ts";

/** The waiting dependents of the tasks `ids`, as a subquery of ids. */
const DEPENDENTS = sql`SELECT task_id FROM task_dependencies WHERE depends_on = ANY(${p("ids")}::bigint[])`;

const LOCK_DEPENDENTS = new PreparedSql(sql`
  SELECT count(*) AS locked FROM (
    SELECT 1 FROM task_queue WHERE status = 'waiting' AND id IN (${DEPENDENTS}) ORDER BY id FOR NO KEY UPDATE
  ) AS l`);

const RELEASE = new PreparedSql(sql`
  UPDATE task_queue t SET status = 'queued', run_after = greatest(t.run_after, ${p("now")}::bigint),
    updated_at = ${p("now")}::bigint
  WHERE t.status = 'waiting' AND t.id IN (${DEPENDENTS})
    AND NOT EXISTS (
      SELECT 1 FROM task_dependencies d JOIN task_queue r ON r.id = d.depends_on
      WHERE d.task_id = t.id AND r.status <> 'completed'
    )
  RETURNING t.id`);

/** The statements that queue the waiting dependents of `ids` whose dependencies have all completed. */
export function releaseDependents(ids: readonly number[], now: number): Statement[] {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  return [LOCK_DEPENDENTS.bind({ ids: sorted }), RELEASE.bind({ ids: sorted, now })];
}

/**
 * The tasks waiting, directly or down a chain, on one of `roots` that failed or was cancelled: `id`, the
 * dependency it waits on (`via`), and the task whose end dooms the chain (`root`). The recursion follows
 * waiting tasks only, and ends: dependencies exist before their dependents, so there is no cycle.
 */
function doomed(roots: SQL): SQL {
  return sql`
    WITH RECURSIVE doomed(id, via, root) AS (
      SELECT d.task_id, d.depends_on, d.depends_on
      FROM task_dependencies d
        JOIN task_queue r ON r.id = d.depends_on AND r.status IN ('failed', 'cancelled')
        JOIN task_queue w ON w.id = d.task_id AND w.status = 'waiting'
      WHERE d.depends_on IN (${roots})
      UNION
      SELECT d.task_id, d.depends_on, doomed.root
      FROM doomed JOIN task_dependencies d ON d.depends_on = doomed.id
        JOIN task_queue w ON w.id = d.task_id AND w.status = 'waiting'
    )`;
}

/**
 * Cancels what waits on `roots` (those of them that failed or were cancelled), each told why: locked first
 * by ascending id, as releases lock, then changed in the next statement.
 */
function cancelDependentsOf(roots: SQL, now: number): SQL[] {
  const why = sql`CASE r.status WHEN 'failed' THEN 'failed' || coalesce(': ' || r.error_message, '')
    ELSE 'was cancelled' END`;
  return [
    sql`
      ${doomed(roots)}
      SELECT count(*) AS locked FROM (
        SELECT 1 FROM task_queue WHERE status = 'waiting' AND id IN (SELECT id FROM doomed)
        ORDER BY id FOR NO KEY UPDATE
      ) AS l`,
    sql`
      ${doomed(roots)}
      UPDATE task_queue t SET status = 'cancelled', finished_at = ${now}::bigint, updated_at = ${now}::bigint,
        error_message = CASE WHEN m.via = m.root THEN 'Dependency task ' || m.root || ' ' || ${why}
          ELSE 'Dependency task ' || m.via || ' was cancelled because task ' || m.root || ' ' || ${why} END
      FROM (SELECT DISTINCT ON (id) id, via, root FROM doomed ORDER BY id, via, root) m
        JOIN task_queue r ON r.id = m.root
      WHERE t.id = m.id AND t.status = 'waiting'
      RETURNING t.id`,
  ];
}

/** The statements that cancel what waits on the tasks `ids`, those of them that failed or were cancelled. */
export function cancelDependents(ids: readonly number[], now: number): Statement[] {
  return cancelDependentsOf(rootsOf(ids), now).map(compile);
}

function rootsOf(ids: readonly number[]): SQL {
  return sql`SELECT unnest(${array([...new Set(ids)])}::bigint[])`;
}

/**
 * {@link cancelDependents} of the tasks that failed or were cancelled at `now`: those the statements before
 * them in their transaction ended (the reaper's failures), and perhaps others, whose dependents are no more
 * runnable than theirs.
 */
export function cancelDependentsOfFinishedAt(now: number): Statement[] {
  return cancelDependentsOf(
    sql`SELECT id FROM task_queue WHERE finished_at = ${now}::bigint AND status IN ('failed', 'cancelled')`,
    now,
  ).map(compile);
}

/** Whether `task` depends on others. */
export function hasDependencies(task: NewTask): boolean {
  return task.dependsOn !== undefined && task.dependsOn.length > 0;
}

/**
 * Inserts `tasks` with `insert`, then their dependencies, through `run` (one transaction, which the caller
 * holds): locks the tasks depended on, and refuses, before inserting anything, a dependency no task has; a
 * task whose dependencies have not all completed is `waiting`; one that depends on a failed or cancelled
 * task is cancelled at once, saying which. A task found by its idempotency key keeps what it had.
 *
 * @throws {DependencyError} naming the first id no task has
 */
export async function insertWithDependencies(
  run: SqlRunner,
  tasks: readonly NewTask[],
  now: number,
  insert: () => Promise<InsertedTask[]>,
): Promise<InsertedTask[]> {
  const ids = [...new Set(tasks.flatMap((task) => task.dependsOn ?? []))].sort((a, b) => a - b);
  if (ids.length === 0) return await insert();
  const rows = await run(sql`
    SELECT id FROM task_queue WHERE id = ANY(${array(ids)}::bigint[]) ORDER BY id FOR SHARE`);
  const present = new Set(rows.map((row) => Number(row.id)));
  const missing = ids.find((id) => !present.has(id));
  if (missing !== undefined) throw DependencyError.missing(missing);
  const inserted = await insert();
  const pairs = inserted.flatMap((result, i) =>
    result.created ? [...new Set(tasks[i]!.dependsOn ?? [])].map((on) => [result.id, on] as const) : []
  );
  if (pairs.length === 0) return inserted;
  const dependents = [...new Set(pairs.map(([id]) => id))];
  await run(sql`
    INSERT INTO task_dependencies (task_id, depends_on)
    SELECT * FROM unnest(${array(pairs.map(([id]) => id))}::bigint[], ${
    array(pairs.map(([, on]) => on))
  }::bigint[])`);
  await run(sql`
    UPDATE task_queue t SET status = 'waiting'
    WHERE t.id = ANY(${array(dependents)}::bigint[])
      AND EXISTS (
        SELECT 1 FROM task_dependencies d JOIN task_queue r ON r.id = d.depends_on
        WHERE d.task_id = t.id AND r.status <> 'completed'
      )`);
  for (const statement of cancelDependentsOf(rootsOf(ids), now)) await run(statement);
  const settled = new Map(
    (await run(sql`
      SELECT id, status, error_message AS "errorMessage", finished_at AS "finishedAt" FROM task_queue
      WHERE id = ANY(${array(dependents)}::bigint[])`)).map((row) => [Number(row.id), row]),
  );
  return inserted.map((result) => {
    const row = result.created ? settled.get(result.id) : undefined;
    if (!row) return result;
    const finishedAt = row.finishedAt === null ? null : Number(row.finishedAt);
    return {
      ...result,
      settled: {
        status: row.status as TaskStatus,
        errorMessage: row.errorMessage as string | null,
        finishedAt,
      },
    };
  });
}
