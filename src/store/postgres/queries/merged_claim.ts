/**
 * The claim of a worker that serves limited queues: one UPDATE that takes, in the strategy's order, from the
 * free queues and from each limited queue at most what its limits leave, so that a limited queue's backlog
 * does not come before a free queue's better task. It reads the limited queues' settings and rate windows,
 * counts their running tasks, works out what each may give (as `../../limited_claim.ts` does for SQLite:
 * `currentWindow` and `allowance`), and writes the windows of the queues it claimed from, all in itself, so
 * that the whole claim is one statement after the lock of the queues' rows (`lockLimitedStatement`), sent
 * with it in one round trip. Each part locks its candidates `FOR UPDATE SKIP LOCKED`. The same statement
 * without limited queues is the free claim of a worker that must pass held queues by.
 *
 * @module
 */
import { type SQL, sql } from "drizzle-orm";
import type { ClaimParams, ClaimStrategy, LeasedTask } from "../../store.ts";
import { CLAIM_KEY, CLAIM_RETURNING, LEASE_TOKEN } from "../columns.ts";
import { p, PreparedSql, type Statement, statusAllows } from "../sql.ts";
import { CURRENT_WINDOW, HELD_QUEUES } from "./queues.ts";

/** Each part's candidates come in this order (a weighted draw picks among the best by priority). */
const PART_ORDER: Record<ClaimStrategy, string> = {
  priority: "priority, run_after, id",
  fifo: "id",
  lifo: "id DESC",
  weighted_random: "priority, run_after, id",
};

/** And the parts' candidates are merged in this one: for a weighted draw, the exponential race. */
const MERGE_ORDER: Record<ClaimStrategy, string> = {
  ...PART_ORDER,
  weighted_random: "-ln(1 - random()) * (1 + greatest(priority, 0))",
};

const MERGED = new Map<string, PreparedSql>();

function mergedQuery(
  strategy: ClaimStrategy,
  typed: boolean,
  listed: boolean,
  arms: number,
  withFree: boolean,
): PreparedSql {
  const key = `${strategy}:${typed}:${listed}:${arms}:${withFree}`;
  let prepared = MERGED.get(key);
  if (prepared) return prepared;
  const ofTypes = typed ? sql`AND type = ANY(${p("types")}::text[])` : sql``;
  const due = sql`status = 'queued' AND run_after <= ${p("now")}::bigint ${ofTypes}`;
  const order = sql.raw(PART_ORDER[strategy]);
  const parts: SQL[] = [];
  // The queues served: those named, or those with queued tasks, found by a walk of the index led by the
  // queue that jumps from one queue to the next (a probe a queue).
  const served = !withFree
    ? sql``
    : listed
    ? sql`served(name) AS (SELECT unnest(${p("queues")}::text[])),`
    : sql`served(name) AS (
        SELECT min(queue) FROM task_queue WHERE status = 'queued'
        UNION ALL SELECT (SELECT min(queue) FROM task_queue WHERE status = 'queued' AND queue > served.name)
        FROM served WHERE served.name IS NOT NULL),`;
  // Of those, the free ones: neither held as the store knows them (bound, see `claim.ts` for why) nor now.
  const freeServed = sql`served.name IS NOT NULL AND served.name <> ALL(${p("held")}::text[])
        AND served.name <> ALL(ARRAY${HELD_QUEUES})`;
  if (withFree && strategy === "priority") {
    // Each served queue's best tasks, read from the index led by the queue (ordered by the queue first, and
    // the queue matched as a range, which the planner does not fold into a constant: so that it never walks
    // the priority index instead, expecting to find the queue's tasks soon, 13 ms with 50,000 held ahead): a held queue's backlog is never
    // walked past (the index led by priority would pass every one of its tasks ahead of a free one). The
    // held queues are left out before any of their tasks is locked (the UPDATE leaves them out in any
    // case: see below).
    parts.push(sql`SELECT f.id, f.priority, f.run_after FROM served CROSS JOIN LATERAL (
        SELECT id, priority, run_after FROM task_queue
        WHERE ${due} AND queue >= served.name AND queue <= served.name
        ORDER BY queue, ${order} LIMIT ${p("limit")}::bigint FOR UPDATE SKIP LOCKED) AS f
      WHERE ${freeServed}`);
  } else if (withFree) {
    // The free queues' best tasks in the strategy's order, by a walk of its index. Only the held queues as
    // the store knows them are left out here, bound: with the held queues now as a subquery, the planner
    // expected one task to match and read the whole table, then sorted it (20-40 ms a claim beside 50,000
    // tasks of a limited queue, against 0.5 ms when the free tasks come first in the strategy's order, as
    // by id descending). Those held since the store looked are left out by the UPDATE. And only when a
    // free queue served has queued tasks (a condition the statement checks once, before it reads a task):
    // with every queued task in held queues, the planner rightly expected none to match, and read the whole
    // table rather than the index (15-20 ms a claim beside 50,000 tasks of a limited queue, for nothing).
    const ofQueues = listed ? sql`AND queue = ANY(${p("queues")}::text[])` : sql``;
    parts.push(sql`SELECT id, priority, run_after FROM (
      SELECT id, priority, run_after FROM task_queue
      WHERE ${due} ${ofQueues} AND queue <> ALL(${p("held")}::text[])
        AND EXISTS (SELECT FROM served WHERE ${freeServed})
      ORDER BY ${order} LIMIT ${p("limit")}::bigint FOR UPDATE SKIP LOCKED) AS f`);
  }
  // A limited queue's best tasks, at most what its limits leave (`limits`, below; none when it is no longer
  // limited, or paused); by priority, from the index led by the queue, as above. The planner cannot know
  // that limit before the statement runs and expects a tenth of the queue's tasks: still far cheaper by
  // that index than sorted, so it walks the index (tests/postgres_plans_test.ts). First in or last in, by
  // id: no index is led by the queue and ordered by id, so with statistics the planner walks the id order,
  // and without (a table never analyzed yet) it reads all the queue's queued tasks by the index led by the
  // queue and sorts them (30-45 ms a claim with 50,000 queued; an index on (queue, id) would spare it).
  const byQueueIndex = strategy !== "fifo" && strategy !== "lifo";
  for (let i = 0; i < arms; i++) {
    const queue = p(`queue${i}`);
    const ofQueue = byQueueIndex
      ? sql`queue >= ${queue}::text AND queue <= ${queue}::text`
      : sql`queue = ${queue}::text`;
    parts.push(sql`SELECT id, priority, run_after FROM (
      SELECT id, priority, run_after FROM task_queue WHERE ${due} AND ${ofQueue}
      ORDER BY ${byQueueIndex ? sql`queue, ${order}` : order}
      LIMIT coalesce((SELECT take FROM limits WHERE name = ${queue}::text), 0)
      FOR UPDATE SKIP LOCKED) AS ${sql.raw(`l${i}`)}`);
  }
  const merge = sql.raw(MERGE_ORDER[strategy]);
  // The first `start` of all candidates start now; the next ones are claimed ahead. The rows
  // are fetched by their ids as arrays, as in `claim.ts`.
  const chosen = sql`
    candidates AS MATERIALIZED (${sql.join(parts, sql` UNION ALL `)}),
    starters AS MATERIALIZED (SELECT id FROM candidates ORDER BY ${merge} LIMIT ${p("start")}::bigint),
    ahead AS (
      SELECT id FROM candidates WHERE id <> ALL(ARRAY(SELECT id FROM starters))
      ORDER BY ${merge} LIMIT ${p("ahead")}::bigint),
    s AS (SELECT ARRAY(SELECT id FROM starters) AS ids, ${CLAIM_KEY})`;
  // The rows claimed are checked against the queues as they are now: from a queue limited or paused since the
  // store last looked, none but those its own arm took (a queue the store knows to be limited has an arm, and
  // is held; one limited since has none, and is claimed from under its limits once the store looks again).
  const update = sql`
    UPDATE task_queue t SET
      status = 'running', attempts = t.attempts + CASE WHEN t.id = ANY(s.ids) THEN 1 ELSE 0 END,
      locked_by = ${p("workerId")}::text, lease_token = ${LEASE_TOKEN},
      lease_until = ${p("leaseUntil")}::bigint,
      started_at = CASE WHEN t.id = ANY(s.ids) THEN ${p("now")}::bigint END, updated_at = ${p("now")}::bigint
    FROM s
    WHERE t.id = ANY(ARRAY(SELECT id FROM starters UNION ALL SELECT id FROM ahead))
      AND (t.queue = ANY(${p("limited")}::text[]) OR t.queue <> ALL(ARRAY${HELD_QUEUES}))
      AND t.${statusAllows("claim")}
    RETURNING ${CLAIM_RETURNING}`;
  // With limited queues, the rate windows of those claimed from are written by the same statement.
  prepared = new PreparedSql(
    arms === 0 ? sql`WITH RECURSIVE ${served} ${chosen} ${update}` : sql`
    WITH RECURSIVE ${served} ${LIMITS}, ${chosen},
    claimed AS (${update}),
    ${WINDOWS}
    SELECT c.*, w.start_by AS "startBy" FROM claimed c LEFT JOIN windows w ON w.name = c."queue"`,
  );
  MERGED.set(key, prepared);
  return prepared;
}

/**
 * What each limited queue the claim serves may give now, read after its row was locked (so that the count
 * of its running tasks holds every claim committed before): what its concurrency limit leaves beside its
 * running tasks (claimed-ahead and expired ones included), and what its rate limit leaves in the current
 * window, at most the claim's `limit`. The current window is the one `now` falls in (aligned to epoch time),
 * or the queue's own when that is as late or later (a claim whose time was read before another claim opened
 * a newer window counts in that one: {@link CURRENT_WINDOW}). That is `allowance` of `limited_claim.ts`.
 */
const LIMITS = sql`limits AS MATERIALIZED (
      SELECT q.name, q.rate_limit AS rate, q.rate_interval_ms AS interval, w.start, w.count,
        greatest(0, least(${p("limit")}::bigint,
          coalesce(q.concurrency_limit - (
            SELECT count(*) FROM task_queue r WHERE r.status = 'running' AND r.queue = q.name
          ), ${p("limit")}::bigint),
          coalesce(q.rate_limit - w.count, ${p("limit")}::bigint))) AS take
      FROM queues q ${CURRENT_WINDOW}
      WHERE q.name = ANY(${p("limited")}::text[]) AND NOT q.paused
        AND (q.concurrency_limit IS NOT NULL OR q.rate_limit IS NOT NULL))`;

/**
 * The claims counted in each rate-limited queue's window, and the end of that window: the tasks claimed
 * ahead from it must start before then (see `LeasedTask.startBy`).
 */
const WINDOWS = sql`windows AS (
      UPDATE queues q SET window_start = l.start, window_count = l.count + c.n
      FROM limits l, (SELECT "queue", count(*) AS n FROM claimed GROUP BY "queue") AS c
      WHERE q.name = l.name AND c."queue" = l.name AND l.rate IS NOT NULL
      RETURNING q.name, l.start + l.interval AS start_by)`;

/**
 * Locks the rows of the limited queues `limited` in name order (so that two claims never wait for each other
 * in a cycle), until the transaction ends: claims from a limited queue are made one at a time, and the claim
 * after this statement sees every claim committed before the lock was granted. Free queues' claims never
 * touch these rows.
 */
const LOCK_LIMITED = new PreparedSql(
  sql`SELECT name FROM queues WHERE name = ANY(${p("limited")}::text[]) ORDER BY name FOR UPDATE`,
);

/** See {@link LOCK_LIMITED}. */
export function lockLimitedStatement(limited: readonly string[]): Statement {
  return LOCK_LIMITED.bind({ limited: [...limited] });
}

/**
 * The merged claim for `params`: from the free queues (unless `withFree` is false) and from each queue of
 * `limited` (which must follow {@link lockLimitedStatement} in its transaction) what its limits leave.
 */
export function mergedClaimStatement(
  params: ClaimParams,
  limited: readonly string[],
  withFree: boolean,
  held: readonly string[],
): Statement {
  const { now, limit, strategy, types, queues } = params;
  const start = Math.min(params.start ?? limit, limit);
  const values: Record<string, unknown> = {
    now,
    limit,
    start,
    ahead: limit - start,
    types: types ? [...types] : undefined,
    queues: queues ? [...queues] : undefined,
    held: [...held],
    limited: [...limited],
    workerId: params.workerId,
    leaseUntil: now + params.leaseMs,
  };
  limited.forEach((queue, i) => {
    values[`queue${i}`] = queue;
  });
  const arms = limited.length;
  return mergedQuery(strategy, types !== undefined, queues !== undefined, arms, withFree).bind(values);
}

/**
 * `leased`, the tasks claimed ahead from a rate-limited queue marked with the end of the window their claim
 * was counted in, which they must start by: the merged claim's `rows` carry it (`startBy`).
 */
export function startByOf(leased: LeasedTask[], rows: readonly Record<string, unknown>[]): LeasedTask[] {
  const startBy = new Map<number, number>();
  for (const row of rows) {
    if (row.startBy !== null && row.startBy !== undefined) {
      startBy.set(row.id as number, Number(row.startBy));
    }
  }
  if (startBy.size === 0) return leased;
  for (const item of leased) {
    const by = startBy.get(item.task.id);
    if (by !== undefined && item.task.startedAt === null) item.startBy = by;
  }
  return leased;
}
