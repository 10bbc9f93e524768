/**
 * The claim of a worker that serves limited queues: one UPDATE that takes, in the strategy's order, from the
 * free queues and from each limited queue at most what its limits leave, so that a limited queue's backlog
 * does not come before a free queue's better task. Run in the transaction that holds the limited queues'
 * rows, after their limits were read; each part locks its candidates `FOR UPDATE SKIP LOCKED`.
 *
 * @module
 */
import { type SQL, sql } from "drizzle-orm";
import type { ClaimParams, ClaimStrategy } from "../../store.ts";
import type { LimitedArm } from "../../limited_claim.ts";
import { CLAIM_KEY, CLAIM_RETURNING, LEASE_TOKEN } from "../columns.ts";
import { p, PreparedSql, type Statement, statusAllows } from "../sql.ts";
import { HELD_QUEUES } from "./queues.ts";

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
  let served = sql``;
  if (withFree && strategy === "priority") {
    // Each served queue's best tasks, read from the index led by the queue (ordered by the queue first, and
    // the queue matched as a range, which the planner does not fold into a constant: so that it never walks
    // the priority index instead, expecting to find the queue's tasks soon, 13 ms with 50,000 held ahead): a held queue's backlog is never
    // walked past (the index led by priority would pass every one of its tasks ahead of a free one). The
    // queues served are those named, or those with queued tasks, found by a walk of that index that jumps
    // from one queue to the next. The held queues as the store knows them are bound (see `claim.ts` for
    // why), and those held now are left out too: a queue limited since the store last looked would
    // otherwise give its tasks through this free part as well as through its own arm, past its limit.
    served = listed ? sql`served(name) AS (SELECT unnest(${p("queues")}::text[])),` : sql`served(name) AS (
        SELECT min(queue) FROM task_queue WHERE status = 'queued'
        UNION ALL SELECT (SELECT min(queue) FROM task_queue WHERE status = 'queued' AND queue > served.name)
        FROM served WHERE served.name IS NOT NULL),`;
    parts.push(sql`SELECT f.id, f.priority, f.run_after FROM served CROSS JOIN LATERAL (
        SELECT id, priority, run_after FROM task_queue
        WHERE ${due} AND queue >= served.name AND queue <= served.name
        ORDER BY queue, ${order} LIMIT ${p("limit")}::bigint FOR UPDATE SKIP LOCKED) AS f
      WHERE served.name IS NOT NULL AND served.name <> ALL(${p("held")}::text[])
        AND served.name <> ALL(ARRAY${HELD_QUEUES})`);
  } else if (withFree) {
    const ofQueues = listed ? sql`AND queue = ANY(${p("queues")}::text[])` : sql``;
    parts.push(sql`SELECT id, priority, run_after FROM (
      SELECT id, priority, run_after FROM task_queue
      WHERE ${due} ${ofQueues} AND queue <> ALL(${p("held")}::text[]) AND queue <> ALL(ARRAY${HELD_QUEUES})
      ORDER BY ${order} LIMIT ${p("limit")}::bigint FOR UPDATE SKIP LOCKED) AS f`);
  }
  // A limited queue's best tasks; by priority, from the index led by the queue, as above.
  const byQueueIndex = strategy !== "fifo" && strategy !== "lifo";
  for (let i = 0; i < arms; i++) {
    const queue = p(`queue${i}`);
    const ofQueue = byQueueIndex
      ? sql`queue >= ${queue}::text AND queue <= ${queue}::text`
      : sql`queue = ${queue}::text`;
    parts.push(sql`SELECT id, priority, run_after FROM (
      SELECT id, priority, run_after FROM task_queue WHERE ${due} AND ${ofQueue}
      ORDER BY ${byQueueIndex ? sql`queue, ${order}` : order} LIMIT ${p(`take${i}`)}::bigint
      FOR UPDATE SKIP LOCKED) AS ${sql.raw(`l${i}`)}`);
  }
  const merge = sql.raw(MERGE_ORDER[strategy]);
  // The first `start` of all candidates start now; the next ones are claimed ahead. The rows
  // are fetched by their ids as arrays, as in `claim.ts`.
  prepared = new PreparedSql(sql`
    WITH RECURSIVE ${served}
    candidates AS MATERIALIZED (${sql.join(parts, sql` UNION ALL `)}),
    starters AS MATERIALIZED (SELECT id FROM candidates ORDER BY ${merge} LIMIT ${p("start")}::bigint),
    ahead AS (
      SELECT id FROM candidates WHERE id <> ALL(ARRAY(SELECT id FROM starters))
      ORDER BY ${merge} LIMIT ${p("ahead")}::bigint),
    s AS (SELECT ARRAY(SELECT id FROM starters) AS ids, ${CLAIM_KEY})
    UPDATE task_queue t SET
      status = 'running', attempts = t.attempts + CASE WHEN t.id = ANY(s.ids) THEN 1 ELSE 0 END,
      locked_by = ${p("workerId")}::text, lease_token = ${LEASE_TOKEN},
      lease_until = ${p("leaseUntil")}::bigint,
      started_at = CASE WHEN t.id = ANY(s.ids) THEN ${p("now")}::bigint END, updated_at = ${p("now")}::bigint
    FROM s
    WHERE t.id = ANY(ARRAY(SELECT id FROM starters UNION ALL SELECT id FROM ahead))
      AND (t.queue = ANY(${p("limited")}::text[]) OR t.queue <> ALL(ARRAY${HELD_QUEUES}))
      AND t.${statusAllows("claim")}
    RETURNING ${CLAIM_RETURNING}`);
  MERGED.set(key, prepared);
  return prepared;
}

/** The merged claim for `params`: from the free queues (unless `withFree` is false) and from `arms`. */
export function mergedClaimStatement(
  params: ClaimParams,
  arms: readonly LimitedArm[],
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
    limited: arms.map((arm) => arm.queue),
    workerId: params.workerId,
    leaseUntil: now + params.leaseMs,
  };
  arms.forEach((arm, i) => {
    values[`queue${i}`] = arm.queue;
    values[`take${i}`] = arm.take;
  });
  return mergedQuery(strategy, types !== undefined, queues !== undefined, arms.length, withFree).bind(values);
}
