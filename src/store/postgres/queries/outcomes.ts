/**
 * Outcomes: the grouped writes a worker makes as its tasks start and finish, each one statement for any
 * number of tasks (one array per field, read with `unnest`). Starts of tasks claimed ahead count their
 * attempts; completions (nearly all outcomes) go in one statement, those with a result in another,
 * snoozes (`snooze.ts`) in another, every other outcome in another. Each is
 * fenced by its lease token, so a worker that lost a task changes nothing, and learns which of its writes
 * held. Each locks its tasks by ascending id, and a write of several statements locks them all first (see
 * lock_order.ts).
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { Finish, Progress, Recorded } from "../../store.ts";
import { p, PreparedSql, type Statement } from "../sql.ts";
import { cancelDependents, releaseDependents } from "./dependencies.ts";
import { lockInIdOrder } from "./lock_order.ts";
import { snoozeMany } from "./snooze.ts";

/**
 * What every outcome sets about the attempt: a task claimed ahead whose start was not recorded yet (it
 * started and finished within one grouped write) has its attempt counted now; and a task handed back
 * unconfirmed by a dead worker is confirmed, since a handler of it has returned.
 */
const COUNT_ATTEMPT = sql`
  attempts = t.attempts + CASE WHEN t.started_at IS NULL THEN 1 ELSE 0 END,
  started_at = coalesce(t.started_at, ${p("now")}::bigint), unconfirmed_start = false`;

const COMPLETE_MANY = new PreparedSql(sql`
  UPDATE task_queue t SET
    status = 'completed', finished_at = ${p("now")}::bigint, updated_at = ${p("now")}::bigint,
    lease_until = NULL, lease_token = NULL, ${COUNT_ATTEMPT}
  FROM unnest(${p("ids")}::bigint[], ${p("tokens")}::text[]) AS f(id, token)
  WHERE t.id = f.id AND t.lease_token = f.token AND t.status = 'running'
  RETURNING t.id`);

// Completions that store their handler's result (JSON text, then json: bound as json, the driver would
// encode the text again).
const COMPLETE_WITH_RESULTS = new PreparedSql(sql`
  UPDATE task_queue t SET
    status = 'completed', result = f.result::json, finished_at = ${p("now")}::bigint,
    updated_at = ${p("now")}::bigint, lease_until = NULL, lease_token = NULL, ${COUNT_ATTEMPT}
  FROM unnest(${p("ids")}::bigint[], ${p("tokens")}::text[], ${p("results")}::text[]) AS f(id, token, result)
  WHERE t.id = f.id AND t.lease_token = f.token AND t.status = 'running'
  RETURNING t.id`);

// Any mix of outcomes; the lease token fences out a worker that lost the task.
const FINISH_MANY = new PreparedSql(sql`
  UPDATE task_queue t SET
    status = f.status,
    run_after = CASE WHEN f.status = 'queued' THEN f.run_after ELSE t.run_after END,
    error_message = CASE WHEN f.status = 'completed' THEN t.error_message ELSE f.message END,
    finished_at = CASE WHEN f.status = 'queued' THEN NULL ELSE ${p("now")}::bigint END,
    lease_until = NULL, lease_token = NULL, updated_at = ${p("now")}::bigint, ${COUNT_ATTEMPT}
  FROM unnest(${p("ids")}::bigint[], ${p("tokens")}::text[], ${p("statuses")}::text[],
    ${p("runAfters")}::bigint[], ${p("messages")}::text[]) AS f(id, token, status, run_after, message)
  WHERE t.id = f.id AND t.lease_token = f.token AND t.status = 'running'
  RETURNING t.id`);

/** Starts of tasks claimed ahead: their attempt counts from now on. */
const START_MANY = new PreparedSql(sql`
  UPDATE task_queue t SET
    attempts = t.attempts + CASE WHEN t.started_at IS NULL THEN 1 ELSE 0 END,
    started_at = coalesce(t.started_at, f.at), updated_at = ${p("now")}::bigint
  FROM unnest(${p("ids")}::bigint[], ${p("tokens")}::text[], ${p("ats")}::bigint[]) AS f(id, token, at)
  WHERE t.id = f.id AND t.lease_token = f.token AND t.status = 'running'
  RETURNING t.id`);

/** The writes a progress needs, each part's tasks by ascending id (see lock_order.ts). */
type Parts = ReturnType<typeof splitProgress>;

/** Each progress's parts, worked out once for its statements and again for what they did. */
const PARTS = new WeakMap<Progress, Parts>();

function partsOf(progress: Progress): Parts {
  let parts = PARTS.get(progress);
  if (parts === undefined) PARTS.set(progress, parts = splitProgress(progress));
  return parts;
}

function splitProgress({ starts, finishes }: Progress) {
  const byId = (a: { id: number }, b: { id: number }) => a.id - b.id;
  const finishing = new Set(finishes.map((finish) => finish.leaseToken));
  // Starts of tasks finishing in the same write are written through their outcome, which counts the attempt.
  const unfinished = starts.filter((start) => !finishing.has(start.leaseToken)).sort(byId);
  // Two outcomes for one task (from a lost lease and a later claim of it) both stay: the fence decides.
  const completed: Finish[] = [];
  const results: (Finish & { status: "completed" })[] = [];
  const snoozed: Finish[] = [];
  const others: Exclude<Finish, { status: "completed" | "snoozed" }>[] = [];
  for (const finish of finishes) {
    if (finish.status === "completed") (finish.result === undefined ? completed : results).push(finish);
    else if (finish.status === "snoozed") snoozed.push(finish);
    else others.push(finish);
  }
  completed.sort(byId);
  results.sort(byId);
  snoozed.sort(byId);
  others.sort(byId);
  const updates = [unfinished, completed, results, snoozed, others].filter((part) => part.length > 0).length;
  const completedIds: number[] = [];
  const failedIds: number[] = [];
  for (const finish of finishes) {
    if (finish.status === "completed") completedIds.push(finish.id);
    else if (finish.status === "failed") failedIds.push(finish.id);
  }
  // One UPDATE locks its tasks in the order of its arrays, which drive the join; several would lock theirs
  // statement by statement, so then all are locked first, in one statement.
  return {
    unfinished,
    completed,
    results,
    snoozed,
    others,
    updates,
    lockFirst: updates > 1,
    completedIds,
    failedIds,
  };
}

/**
 * The statements that record `progress`: starts (but those finishing in the same write), then completions
 * in one, completions with results in one, snoozes in one, the other outcomes in another; and before them, when they are more than one, the lock of all
 * their tasks in id order.
 */
export function progressStatements(progress: Progress, now: number): Statement[] {
  const parts = partsOf(progress);
  const { unfinished, completed, results, snoozed, others, lockFirst } = parts;
  const statements: Statement[] = [];
  if (lockFirst) {
    const all = [...unfinished, ...completed, ...results, ...snoozed, ...others];
    statements.push(lockInIdOrder(all.map((part) => part.id)));
  }
  if (unfinished.length > 0) {
    statements.push(START_MANY.bind({
      now,
      ids: unfinished.map((start) => start.id),
      tokens: unfinished.map((start) => start.leaseToken),
      ats: unfinished.map((start) => start.at),
    }));
  }
  if (completed.length > 0) {
    statements.push(COMPLETE_MANY.bind({
      now,
      ids: completed.map((finish) => finish.id),
      tokens: completed.map((finish) => finish.leaseToken),
    }));
  }
  if (results.length > 0) {
    statements.push(COMPLETE_WITH_RESULTS.bind({
      now,
      ids: results.map((finish) => finish.id),
      tokens: results.map((finish) => finish.leaseToken),
      results: results.map((finish) => finish.result),
    }));
  }
  if (snoozed.length > 0) statements.push(snoozeMany(snoozed, now));
  if (others.length > 0) {
    statements.push(FINISH_MANY.bind({
      now,
      ids: others.map((finish) => finish.id),
      tokens: others.map((finish) => finish.leaseToken),
      statuses: others.map((finish) => finish.status),
      runAfters: others.map((finish) => finish.status === "queued" ? finish.runAfter : null),
      messages: others.map((finish) => finish.errorMessage),
    }));
  }
  return [...statements, ...dependencyStatements(parts, now)];
}

/**
 * What the outcomes of a progress do to the tasks that depend on theirs, in the same transaction, after
 * them: the completed release their waiting dependents whose dependencies are all done; the failed cancel
 * theirs. Given every finish of its kind, whether or not its fence will hold: both are idempotent.
 */
function dependencyStatements({ completedIds, failedIds }: Parts, now: number): Statement[] {
  return [
    ...(completedIds.length > 0 ? releaseDependents(completedIds, now) : []),
    ...(failedIds.length > 0 ? cancelDependents(failedIds, now) : []),
  ];
}

/** What {@link progressStatements} did: whose fence held, from each statement's rows in order. */
export function recordedFrom(progress: Progress, written: readonly Record<string, unknown>[][]): Recorded {
  // The lock first (when there is one), then one statement per part written; the dependency rules after.
  const { lockFirst, updates, unfinished } = partsOf(progress);
  const first = lockFirst ? 1 : 0;
  const startWritten = unfinished.length > 0;
  const started = new Set<number>();
  const finished = new Set<number>();
  for (let i = first; i < first + updates; i++) {
    const into = startWritten && i === first ? started : finished;
    for (const row of written[i]!) into.add(row.id as number);
  }
  // A start written through its task's outcome held exactly when the outcome did.
  if (progress.starts.length > unfinished.length) {
    const finishing = new Set(progress.finishes.map((finish) => finish.leaseToken));
    for (const start of progress.starts) {
      if (finishing.has(start.leaseToken) && finished.has(start.id)) started.add(start.id);
    }
  }
  return { started, finished };
}
