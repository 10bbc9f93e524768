/**
 * Outcomes: the grouped writes a worker makes as its tasks start and finish. Starts of tasks claimed ahead
 * count their attempts; completions (nearly all outcomes) go in one statement, those with a result in
 * another, snoozes (`snooze.ts`) in another, every other outcome in another. Each is fenced by its lease token, so a worker that lost a task changes nothing, and learns
 * which of its writes held.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { Finish, Progress, Recorded, Start } from "../../store.ts";
import type { Connection } from "../connection.ts";
import type { SqlStatement, StatementResult } from "../driver.ts";
import { p, PreparedSql } from "../sql.ts";
import { cancelDependents, releaseDependents } from "./dependencies.ts";
import { snoozeMany } from "./snooze.ts";

/**
 * What every outcome sets about the attempt: a task claimed ahead whose start was not recorded yet (it
 * started and finished within one grouped write) has its attempt counted now; and a task handed back
 * unconfirmed by a dead worker is confirmed, since a handler of it has returned. Until then every start of
 * it is recorded before its handler runs (a recorded start alone does not confirm it: the handler may still
 * kill its worker, and the next start, claimed ahead, would go unrecorded again).
 */
const COUNT_ATTEMPT = sql`
  attempts = attempts + (started_at IS NULL), started_at = coalesce(started_at, ${p("now")}),
  unconfirmed_start = 0`;

// Completions only, as `{"<lease token>": <id>}`: one JSON value per task, nothing to take apart.
const COMPLETE_MANY = new PreparedSql(sql`
  UPDATE task_queue SET
    status = 'completed', finished_at = ${p("now")}, updated_at = ${p("now")},
    lease_until = NULL, lease_token = NULL, ${COUNT_ATTEMPT}
  FROM json_each(${p("leases")}) AS f
  WHERE task_queue.id = f.value AND task_queue.lease_token = f.key AND task_queue.status = 'running'
  RETURNING task_queue.id AS id`);

// Completions that store their handler's result, as `[[id, lease token, result JSON text], …]`.
const COMPLETE_WITH_RESULTS = new PreparedSql(sql`
  UPDATE task_queue SET
    status = 'completed', result = f.value ->> 2, finished_at = ${p("now")}, updated_at = ${p("now")},
    lease_until = NULL, lease_token = NULL, ${COUNT_ATTEMPT}
  FROM json_each(${p("outcomes")}) AS f
  WHERE task_queue.id = f.value ->> 0 AND task_queue.lease_token = f.value ->> 1
    AND task_queue.status = 'running'
  RETURNING task_queue.id AS id`);

// One statement for any mix of outcomes; the lease token fences out a worker that lost the task.
const FINISH_MANY = new PreparedSql(sql`
  UPDATE task_queue SET
    status = f.value ->> 2,
    run_after = CASE WHEN f.value ->> 2 = 'queued' THEN f.value ->> 3 ELSE run_after END,
    error_message = CASE WHEN f.value ->> 2 = 'completed' THEN error_message ELSE f.value ->> 4 END,
    finished_at = CASE WHEN f.value ->> 2 = 'queued' THEN NULL ELSE ${p("now")} END,
    lease_until = NULL, lease_token = NULL, updated_at = ${p("now")}, ${COUNT_ATTEMPT}
  FROM json_each(${p("outcomes")}) AS f
  WHERE task_queue.id = f.value ->> 0 AND task_queue.lease_token = f.value ->> 1
    AND task_queue.status = 'running'
  RETURNING task_queue.id AS id`);

/** Starts of tasks claimed ahead, as `[id, lease token, started at]`: their attempt counts from now on. */
const START_MANY = new PreparedSql(sql`
  UPDATE task_queue SET
    attempts = attempts + (started_at IS NULL), started_at = coalesce(started_at, f.value ->> 2),
    updated_at = ${p("now")}
  FROM json_each(${p("starts")}) AS f
  WHERE task_queue.id = f.value ->> 0 AND task_queue.lease_token = f.value ->> 1
    AND task_queue.status = 'running'
  RETURNING task_queue.id AS id`);

/**
 * The statements that record `progress`: starts first (but those finishing in the same write, whose outcome
 * counts the attempt itself), then completions (nearly all outcomes) in one, the rest in another.
 */
export function progressStatements({ starts, finishes }: Progress, now: number): SqlStatement[] {
  const finishing = new Set(finishes.map((finish) => finish.leaseToken));
  const unfinished = starts.filter((start) => !finishing.has(start.leaseToken));
  const statements = unfinished.length === 0 ? [] : [
    START_MANY.bind({
      now,
      starts: JSON.stringify(unfinished.map((start: Start) => [start.id, start.leaseToken, start.at])),
    }),
  ];
  return [...statements, ...finishStatements(finishes, now), ...dependencyStatements(finishes, now)];
}

/**
 * What the outcomes `finishes` do to the tasks that depend on theirs, in the same transaction: the
 * completed release their waiting dependents whose dependencies are all done; the failed cancel theirs.
 * Given every finish of its kind, whether or not its fence will hold: both statements are idempotent.
 */
function dependencyStatements(finishes: readonly Finish[], now: number): SqlStatement[] {
  const completed = finishes.flatMap((finish) => finish.status === "completed" ? [finish.id] : []);
  const failed = finishes.flatMap((finish) => finish.status === "failed" ? [finish.id] : []);
  return [
    ...(completed.length > 0 ? [releaseDependents(completed, now)] : []),
    ...(failed.length > 0 ? [cancelDependents(failed, now)] : []),
  ];
}

/** What {@link progressStatements} did: whose fence held, from their results in order. */
export function recordedFrom(progress: Progress, written: readonly StatementResult[]): Recorded {
  const results = written.slice(0, written.length - dependencyStatements(progress.finishes, 0).length);
  const finishing = new Set(progress.finishes.map((finish) => finish.leaseToken));
  const startWritten = progress.starts.some((start) => !finishing.has(start.leaseToken));
  const finished = heldIds(startWritten ? results.slice(1) : results);
  const started = startWritten ? heldIds(results.slice(0, 1)) : new Set<number>();
  // A start written through its task's outcome held exactly when the outcome did.
  for (const start of progress.starts) {
    if (finishing.has(start.leaseToken) && finished.has(start.id)) started.add(start.id);
  }
  return { started, finished };
}

/** The statements that record `finishes`: completions (nearly all of them) in one, the rest in another. */
function finishStatements(finishes: readonly Finish[], now: number): SqlStatement[] {
  // Keyed by lease token, which is unique to one claim: two outcomes for one task (from a lost lease and
  // a later claim of the same task) both stay, and the fence decides. Written as text directly: an object
  // with hundreds of keys is slow to build and to stringify.
  const completed: string[] = [];
  const results: unknown[][] = [];
  const snoozed: Finish[] = [];
  const others: Finish[] = [];
  for (const finish of finishes) {
    if (finish.status === "completed") {
      if (finish.result === undefined) completed.push(`${JSON.stringify(finish.leaseToken)}:${finish.id}`);
      else results.push([finish.id, finish.leaseToken, finish.result]);
    } else if (finish.status === "snoozed") snoozed.push(finish);
    else others.push(finish);
  }
  const statements = [];
  if (completed.length > 0) {
    statements.push(COMPLETE_MANY.bind({ now, leases: `{${completed.join(",")}}` }));
  }
  if (results.length > 0) {
    statements.push(COMPLETE_WITH_RESULTS.bind({ now, outcomes: JSON.stringify(results) }));
  }
  if (snoozed.length > 0) statements.push(snoozeMany(snoozed, now));
  if (others.length > 0) {
    const outcomes = JSON.stringify(others.map((finish) => [
      finish.id,
      finish.leaseToken,
      finish.status,
      finish.status === "queued" ? finish.runAfter : null,
      finish.status === "completed" || finish.status === "snoozed" ? null : finish.errorMessage,
    ]));
    statements.push(FINISH_MANY.bind({ now, outcomes }));
  }
  return statements;
}

/** The ids whose fence held, from the results of {@link finishStatements}. */
function heldIds(results: readonly StatementResult[]): Set<number> {
  return new Set(results.flatMap((result) => result.rows.map((row) => Number(row.id))));
}

/** Records `progress` (see {@link progressStatements}): one statement on its own, several in one transaction. */
export async function record(conn: Connection, progress: Progress, now: number): Promise<Recorded> {
  const statements = progressStatements(progress, now);
  if (statements.length === 0) return { started: new Set(), finished: new Set() };
  const results = statements.length === 1
    ? [await conn.execute(statements[0]!)]
    : await conn.batch(statements);
  return recordedFrom(progress, results);
}
