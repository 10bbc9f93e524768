/**
 * Dependencies: a task enqueued with `dependsOn` is `waiting` until every task it depends on has completed,
 * then `queued`; when one of them fails for good or is cancelled, it is cancelled, and so are the tasks
 * waiting on it, down the chain. Each of these is one statement that goes in the transaction of the write
 * that caused it (the completion, the failure, the cancel), so no task is ever left waiting on a task that
 * has finished. SQLite runs one write transaction at a time, so the statement that releases a task sees
 * every other completion committed before it: no two completions can each miss the other.
 *
 * Both statements are idempotent (they change only `waiting` tasks, and only as the statuses of their
 * dependencies say), so they take every task that may have finished, whether or not its fence held.
 *
 * @module
 */
import { type SQL, sql } from "drizzle-orm";
import { DependencyError } from "../../../errors.ts";
import type { TaskStatus } from "../../../task.ts";
import type { InsertedTask, NewTask } from "../../store.ts";
import { after, type MaybePromise, type RowsRunner } from "../app_transaction.ts";
import type { SqlStatement } from "../driver.ts";
import { compile, p, PreparedSql } from "../sql.ts";

/** Waiting dependents of the tasks `ids` (JSON) whose dependencies have all completed: queued now. */
const RELEASE = new PreparedSql(sql`
  UPDATE task_queue SET status = 'queued', run_after = max(run_after, ${p("now")}), updated_at = ${p("now")}
  WHERE status = 'waiting'
    AND id IN (
      SELECT task_id FROM task_dependencies WHERE depends_on IN (SELECT value FROM json_each(${p("ids")}))
    )
    AND NOT EXISTS (
      SELECT 1 FROM task_dependencies AS d JOIN task_queue AS r ON r.id = d.depends_on
      WHERE d.task_id = task_queue.id AND r.status <> 'completed'
    )
  RETURNING id`);

/** The statement that queues the waiting dependents of `ids` whose dependencies have all completed. */
export function releaseDependents(ids: readonly number[], now: number): SqlStatement {
  return RELEASE.bind({ now, ids: JSON.stringify(ids) });
}

/**
 * Cancels every task waiting, directly or down a chain, on one of `roots` that failed or was cancelled.
 * Each is told why: the dependency it waited on (`via`) and the task whose end doomed the chain (`root`),
 * the lowest ids of those, when there are several.
 * The recursion follows waiting tasks only, and ends: dependencies exist before their dependents, so there
 * is no cycle.
 */
function cancelDependentsOf(roots: SQL, now: number): SQL {
  const why = sql`CASE r.status WHEN 'failed' THEN 'failed' || coalesce(': ' || r.error_message, '')
    ELSE 'was cancelled' END`;
  return sql`
    WITH RECURSIVE doomed(id, via, root) AS (
      SELECT d.task_id, d.depends_on, d.depends_on
      FROM task_dependencies AS d
        JOIN task_queue AS r ON r.id = d.depends_on AND (r.status = 'failed' OR r.status = 'cancelled')
        JOIN task_queue AS t ON t.id = d.task_id AND t.status = 'waiting'
      WHERE d.depends_on IN (${roots})
      UNION
      SELECT d.task_id, d.depends_on, doomed.root
      FROM doomed JOIN task_dependencies AS d ON d.depends_on = doomed.id
        JOIN task_queue AS t ON t.id = d.task_id AND t.status = 'waiting'
    )
    UPDATE task_queue SET status = 'cancelled', finished_at = ${now}, updated_at = ${now},
      error_message = CASE WHEN m.via = m.root THEN 'Dependency task ' || m.root || ' ' || ${why}
        ELSE 'Dependency task ' || m.via || ' was cancelled because task ' || m.root || ' ' || ${why} END
    FROM (
      SELECT id, via, root FROM (
        SELECT id, via, root, row_number() OVER (PARTITION BY id ORDER BY via, root) AS n FROM doomed
      ) WHERE n = 1
    ) AS m
      JOIN task_queue AS r ON r.id = m.root
    WHERE task_queue.id = m.id AND task_queue.status = 'waiting'
    RETURNING task_queue.id AS id`;
}

/** The statement that cancels what waits on the tasks `ids`, those of them that failed or were cancelled. */
export function cancelDependents(ids: readonly number[], now: number): SqlStatement {
  return compile(cancelDependentsOf(sql`SELECT value FROM json_each(${JSON.stringify(ids)})`, now));
}

/**
 * {@link cancelDependents} of the tasks that failed or were cancelled at `now`: those the statements before
 * it in its transaction ended (the reaper's failures), and perhaps others, whose dependents are no more
 * runnable than theirs.
 */
export function cancelDependentsOfFinishedAt(now: number): SQL {
  return cancelDependentsOf(
    sql`SELECT id FROM task_queue WHERE finished_at = ${now} AND (status = 'failed' OR status = 'cancelled')`,
    now,
  );
}

/** Every id that some task of `tasks` depends on, once each. */
function dependencyIds(tasks: readonly NewTask[]): number[] {
  return [...new Set(tasks.flatMap((task) => task.dependsOn ?? []))];
}

/**
 * Inserts `tasks` with `insert`, then their dependencies, through `run` (one transaction, which the caller
 * holds): refuses, before inserting anything, a dependency no task has; a task whose dependencies have not
 * all completed is `waiting`; one that depends on a failed or cancelled task is cancelled at once, saying
 * which. A task found by its idempotency key keeps what it had. Synchronous while `run` is. Every
 * statement returns rows: some drivers read rows only from those.
 *
 * @throws {DependencyError} naming the first id no task has
 */
export function insertWithDependencies(
  run: RowsRunner,
  tasks: readonly NewTask[],
  now: number,
  insert: () => MaybePromise<InsertedTask[]>,
): MaybePromise<InsertedTask[]> {
  const ids = dependencyIds(tasks);
  if (ids.length === 0) return insert();
  const found = run(
    sql`SELECT id FROM task_queue WHERE id IN (SELECT value FROM json_each(${JSON.stringify(ids)}))`,
  );
  return after(found, (rows) => {
    const present = new Set(rows.map((row) => Number(row[0])));
    const missing = ids.find((id) => !present.has(id));
    if (missing !== undefined) throw DependencyError.missing(missing);
    return after(insert(), (inserted) => {
      const pairs = inserted.flatMap((result, i) =>
        result.created ? [...new Set(tasks[i]!.dependsOn ?? [])].map((on) => [result.id, on]) : []
      );
      if (pairs.length === 0) return inserted;
      const dependents = [...new Set(pairs.map(([id]) => id!))];
      return after(
        run(sql`
          INSERT INTO task_dependencies (task_id, depends_on)
          SELECT f.value ->> 0, f.value ->> 1 FROM json_each(${JSON.stringify(pairs)}) AS f
          RETURNING task_id`),
        () =>
          after(
            run(sql`
              UPDATE task_queue SET status = 'waiting'
              WHERE id IN (SELECT value FROM json_each(${JSON.stringify(dependents)}))
                AND EXISTS (
                  SELECT 1 FROM task_dependencies AS d JOIN task_queue AS r ON r.id = d.depends_on
                  WHERE d.task_id = task_queue.id AND r.status <> 'completed'
                )
              RETURNING id`),
            () =>
              after(
                run(cancelDependentsOf(sql`SELECT value FROM json_each(${JSON.stringify(ids)})`, now)),
                () => after(run(settledOf(dependents)), (rows) => withSettled(inserted, rows)),
              ),
          ),
      );
    });
  });
}

/** Where the tasks `ids` stand: id, status, error message, finished at. */
function settledOf(ids: readonly number[]): SQL {
  return sql`
    SELECT id, status, error_message, finished_at FROM task_queue
    WHERE id IN (SELECT value FROM json_each(${JSON.stringify(ids)}))`;
}

/** `inserted`, each created task with dependencies told where it stands (`rows` of {@link settledOf}). */
function withSettled(inserted: InsertedTask[], rows: readonly unknown[][]): InsertedTask[] {
  const byId = new Map(rows.map((row) => [Number(row[0]), row]));
  return inserted.map((result) => {
    const row = result.created ? byId.get(result.id) : undefined;
    if (!row) return result;
    const finishedAt = row[3] === null ? null : Number(row[3]);
    return {
      ...result,
      settled: { status: row[1] as TaskStatus, errorMessage: row[2] as string | null, finishedAt },
    };
  });
}
