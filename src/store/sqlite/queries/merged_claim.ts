/**
 * The claim of a worker that serves limited queues: one UPDATE that takes, in the strategy's order, from the
 * free queues and from each limited queue at most what its limits leave, so that a limited queue's backlog
 * does not come before a free queue's better task. Run under the write lock after the limits were read.
 *
 * @module
 */
import { type SQL, sql } from "drizzle-orm";
import type { ClaimParams, ClaimStrategy } from "../../store.ts";
import type { LimitedArm } from "../../limited_claim.ts";
import { CLAIM_RETURNING } from "../columns.ts";
import type { SqlStatement } from "../driver.ts";
import { bound, p, PreparedSql, statusAllows } from "../sql.ts";
import { HELD_QUEUES } from "./queues.ts";

/** Each part's candidates come in this order (a weighted draw picks among the best by priority). */
const PART_ORDER: Record<ClaimStrategy, SQL> = {
  priority: sql.raw("priority, run_after, id"),
  fifo: sql.raw("id"),
  lifo: sql.raw("id DESC"),
  weighted_random: sql.raw("priority, run_after, id"),
};

/** And the parts' candidates are merged in this one: for a weighted draw, the exponential race. */
const MERGE_ORDER: Record<ClaimStrategy, SQL> = {
  ...PART_ORDER,
  weighted_random: sql.raw("-ln((abs(random()) % 1000000 + 1) / 1000000.0) * (1 + max(priority, 0))"),
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
  const ofTypes = typed ? sql`AND +type IN (SELECT value FROM json_each(${p("types")}))` : sql``;
  const due = sql`status = 'queued' AND run_after <= ${p("now")} ${ofTypes}`;
  const order = PART_ORDER[strategy];
  const parts: SQL[] = [];
  let served = sql``;
  if (withFree && strategy === "priority") {
    // Each served queue's best tasks, read from the index led by the queue (ordered by the queue first, which
    // is one, so that no planner takes the priority index instead): a held queue's backlog is never
    // walked past (the index led by priority would pass every one of its tasks ahead of a free one). The
    // queues served are those named, or those with queued tasks, found by a walk of that index that jumps
    // from one queue to the next.
    served = listed
      ? sql`served(name) AS (SELECT value FROM json_each(${p("queues")})),`
      : sql`served(name) AS (
        SELECT min(queue) FROM task_queue WHERE status = 'queued'
        UNION ALL SELECT (SELECT min(queue) FROM task_queue WHERE status = 'queued' AND queue > served.name)
        FROM served WHERE served.name IS NOT NULL),`;
    parts.push(sql`SELECT t.id, t.priority, t.run_after FROM served JOIN task_queue t ON t.id IN (
        SELECT id FROM task_queue WHERE ${due} AND queue = served.name
        ORDER BY queue, ${order} LIMIT ${bound(p("limit"))})
      WHERE served.name IS NOT NULL AND served.name NOT IN ${HELD_QUEUES}`);
  } else if (withFree) {
    const ofQueues = listed ? sql`AND queue IN (SELECT value FROM json_each(${p("queues")}))` : sql``;
    parts.push(sql`SELECT id, priority, run_after FROM (
      SELECT id, priority, run_after FROM task_queue WHERE ${due} ${ofQueues} AND queue NOT IN ${HELD_QUEUES}
      ORDER BY ${order} LIMIT ${bound(p("limit"))})`);
  }
  // A limited queue's best tasks; by priority, from the index led by the queue, as above.
  const armOrder = strategy === "fifo" || strategy === "lifo" ? order : sql`queue, ${order}`;
  for (let i = 0; i < arms; i++) {
    parts.push(sql`SELECT id, priority, run_after FROM (
      SELECT id, priority, run_after FROM task_queue WHERE ${due} AND queue = ${p(`queue${i}`)}
      ORDER BY ${armOrder} LIMIT ${bound(p(`take${i}`))})`);
  }
  const merge = MERGE_ORDER[strategy];
  // The first `start` of all candidates start now; the next ones are claimed ahead.
  prepared = new PreparedSql(sql`
    WITH RECURSIVE ${served}
    candidates AS MATERIALIZED (${sql.join(parts, sql` UNION ALL `)}),
    starters AS MATERIALIZED (SELECT id FROM candidates ORDER BY ${merge} LIMIT ${bound(p("start"))}),
    ahead AS (
      SELECT id FROM candidates WHERE id NOT IN (SELECT id FROM starters)
      ORDER BY ${merge} LIMIT ${bound(p("ahead"))})
    UPDATE task_queue SET
      status = 'running', attempts = attempts + (id IN (SELECT id FROM starters)),
      locked_by = ${p("workerId")}, lease_token = lower(hex(randomblob(12))),
      lease_until = ${p("leaseUntil")},
      started_at = CASE WHEN id IN (SELECT id FROM starters) THEN ${p("now")} END, updated_at = ${p("now")}
    -- By id, from the chosen ids: joined to them instead, the planner may scan the whole table.
    WHERE id IN (SELECT id FROM starters UNION ALL SELECT id FROM ahead) AND ${statusAllows("claim")}
    RETURNING ${CLAIM_RETURNING}`);
  MERGED.set(key, prepared);
  return prepared;
}

/**
 * The merged claim for `params`: from the free queues (unless `withFree` is false) and from each limited
 * queue of `arms`, at most its `take`. Its rows are values, as those of `claimStatement`.
 */
export function mergedClaimStatement(
  params: ClaimParams,
  arms: readonly LimitedArm[],
  withFree: boolean,
): SqlStatement {
  const { now, limit, strategy, types, queues } = params;
  const start = Math.min(params.start ?? limit, limit);
  const values: Record<string, unknown> = {
    now,
    limit,
    start,
    ahead: limit - start,
    types: types && JSON.stringify(types),
    queues: queues && JSON.stringify(queues),
    workerId: params.workerId,
    leaseUntil: now + params.leaseMs,
  };
  arms.forEach((arm, i) => {
    values[`queue${i}`] = arm.queue;
    values[`take${i}`] = arm.take;
  });
  const query = mergedQuery(strategy, types !== undefined, queues !== undefined, arms.length, withFree);
  return { ...query.bind(values), raw: true };
}
