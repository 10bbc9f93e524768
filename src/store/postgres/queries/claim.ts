/**
 * Claims: one UPDATE that locks the next runnable tasks in a strategy's order (`FOR UPDATE SKIP LOCKED`, so
 * that workers claiming at once take different tasks without waiting for each other) and leases them to a
 * worker, returning what the worker needs to run them. The first `start` of them start at once; the
 * others are claimed ahead, their attempts not counted until they start.
 *
 * @module
 */
import { type SQL, sql } from "drizzle-orm";
import type { ClaimParams, ClaimStrategy, LeasedTask } from "../../store.ts";
import {
  CLAIM_KEY,
  CLAIM_RETURNING,
  type ClaimRow,
  type ClaimSets,
  LEASE_TOKEN,
  leasedTask,
} from "../columns.ts";
import { p, PreparedSql, type Statement, statusAllows } from "../sql.ts";
import { HELD_QUEUES } from "./queues.ts";

/**
 * Weighted-random claims draw from this many best-priority candidates, so that a claim does not read the
 * whole queue.
 */
const WEIGHTED_CANDIDATES = 1000;

const CLAIM_ORDER: Record<ClaimStrategy, string> = {
  priority: "priority, run_after, id",
  fifo: "id",
  lifo: "id DESC",
  // The random draw, made once per candidate (see below); tasks topped up have none, and come last.
  weighted_random: "draw",
};

/**
 * Which queues a claim takes from: every queue but the held ones (paused or limited, see `queues.ts`), or
 * the listed ones but the held ones. A worker that serves limited queues claims by `merged_claim.ts`.
 */
export type ClaimScope = "all" | "listed";

/** The claim statement for each strategy, with and without a type filter, in each scope. */
const CLAIMS = new Map<string, PreparedSql>();

function claimQuery(strategy: ClaimStrategy, typed: boolean, scope: ClaimScope): PreparedSql {
  const key = `${strategy}:${typed}:${scope}`;
  let prepared = CLAIMS.get(key);
  if (prepared) return prepared;
  const ofTypes = typed ? sql`AND type = ANY(${p("types")}::text[])` : sql``;
  // The held queues as known to the store (at most a second old) are bound, which the planner sees
  // through: a subquery there made it expect one row and sort every queued task instead of walking the
  // claim index (22 ms a claim with 50,000 queued, against 5). The statement checks them again, as they
  // are now, on the rows it claims (below), so that a stale list never claims from a held queue.
  const ofQueues = sql`${scope === "listed" ? sql`AND queue = ANY(${p("queues")}::text[])` : sql``}
      AND queue <> ALL(${p("held")}::text[])`;
  const stillFree = sql`AND t.queue <> ALL(ARRAY${HELD_QUEUES})`;
  const runnable = sql`status = 'queued' AND run_after <= ${p("now")}::bigint ${ofTypes} ${ofQueues}`;
  const order = sql.raw(CLAIM_ORDER[strategy]);
  let locked: SQL;
  if (strategy === "weighted_random") {
    // Exponential race: a task's chance to come first is proportional to 1 / (1 + priority). The draw is
    // made once per candidate, the best-priority runnable tasks; then candidates are locked in draw order,
    // skipping any another worker holds, until the claim has its limit (the limit above the lock, so that a
    // skipped task does not make the claim short). Should more than the window's others be held, the claim
    // tops up with the next runnable tasks in priority order, as the priority strategy would take them.
    locked = sql`
      WITH drawn AS (
        SELECT t.id, w.draw FROM task_queue t JOIN (
          SELECT id, -ln(1 - random()) * (1 + greatest(priority, 0)) AS draw FROM (
            SELECT id, priority FROM task_queue WHERE ${runnable}
            ORDER BY priority, run_after, id LIMIT ${sql.raw(String(WEIGHTED_CANDIDATES))}
          ) AS candidates
        ) AS w ON w.id = t.id
        WHERE t.${statusAllows("claim")} AND t.run_after <= ${p("now")}::bigint
        ORDER BY w.draw LIMIT ${p("limit")}::bigint
        FOR UPDATE OF t SKIP LOCKED
      ),
      topped AS (
        SELECT id, NULL::float8 AS draw FROM task_queue
        WHERE ${runnable} AND id <> ALL(ARRAY(SELECT id FROM drawn))
        ORDER BY priority, run_after, id LIMIT ${p("limit")}::bigint - (SELECT count(*) FROM drawn)
        FOR UPDATE SKIP LOCKED
      )
      SELECT id, draw FROM drawn UNION ALL SELECT id, draw FROM topped`;
  } else {
    locked = sql`
      SELECT id, priority, run_after FROM task_queue WHERE ${runnable}
      ORDER BY ${order} LIMIT ${p("limit")}::bigint
      FOR UPDATE SKIP LOCKED`;
  }
  // The first `start` in claim order start at once, and their attempt counts now; the others are claimed
  // ahead, their attempts untouched and started_at null until they start. The claimed rows are fetched by
  // their ids as an array, and those that start are told apart by a second, short array: joined to the
  // locked rows instead, the planner hashed a sequential scan of the whole table (10-20 ms a claim with
  // 50,000 tasks in it). The rows come back in no order; `leasedFrom` puts them in the strategy's.
  prepared = new PreparedSql(sql`
    WITH l AS (${locked}),
    s AS (SELECT ARRAY(SELECT id FROM l ORDER BY ${order} LIMIT ${p("start")}::bigint) AS ids, ${CLAIM_KEY})
    UPDATE task_queue t SET
      status = 'running', attempts = t.attempts + CASE WHEN t.id = ANY(s.ids) THEN 1 ELSE 0 END,
      locked_by = ${p("workerId")}::text, lease_token = ${LEASE_TOKEN},
      lease_until = ${p("leaseUntil")}::bigint,
      started_at = CASE WHEN t.id = ANY(s.ids) THEN ${p("now")}::bigint END, updated_at = ${p("now")}::bigint
    FROM s
    WHERE t.id = ANY(ARRAY(SELECT id FROM l)) ${stillFree}
    RETURNING ${CLAIM_RETURNING}`);
  CLAIMS.set(key, prepared);
  return prepared;
}

/**
 * The claim for `params`, from the queues not `held` (paused or limited); its rows become leased tasks by
 * {@link leasedFrom}.
 */
export function claimStatement(params: ClaimParams, held: readonly string[] = []): Statement {
  const { now, limit, strategy, types, queues } = params;
  const scope = queues !== undefined ? "listed" : "all";
  return claimQuery(strategy, types !== undefined, scope).bind({
    now,
    limit,
    start: params.start ?? limit,
    types: types ? [...types] : undefined,
    queues: queues ? [...queues] : undefined,
    held: [...held],
    workerId: params.workerId,
    leaseUntil: now + params.leaseMs,
  });
}

/** How two claimed rows compare in each strategy's order. */
const ORDER: Record<ClaimStrategy, (a: ClaimRow, b: ClaimRow) => number> = {
  priority: (a, b) => a.priority - b.priority || a.runAfter - b.runAfter || a.id - b.id,
  fifo: (a, b) => a.id - b.id,
  lifo: (a, b) => b.id - a.id,
  // No order is promised but the one of the contract: the tasks that start (startedAt set) first.
  weighted_random: (a, b) => Number(a.startedAt === null) - Number(b.startedAt === null),
};

/**
 * Claimed rows as leased tasks in claim order: those that start at once first (they are the first in the
 * strategy's order), then those claimed ahead. `params` must be those the claim was bound with: what it set
 * is not read back.
 */
export function leasedFrom(rows: readonly Record<string, unknown>[], params: ClaimParams): LeasedTask[] {
  const sets: ClaimSets = {
    status: "running",
    lockedBy: params.workerId,
    leaseUntil: params.now + params.leaseMs,
    updatedAt: params.now,
  };
  return (rows as ClaimRow[]).slice().sort(ORDER[params.strategy]).map((row) => leasedTask(row, sets));
}
