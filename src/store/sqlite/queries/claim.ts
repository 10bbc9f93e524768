/**
 * Claims: one UPDATE that takes the next runnable tasks in a strategy's order and leases them to a worker,
 * returning what the worker needs to run them. The first `start` of them start at once; the others are
 * claimed ahead, their attempts not counted until they start.
 *
 * @module
 */
import { type SQL, sql } from "drizzle-orm";
import type { Task } from "../../../task.ts";
import type { ClaimParams, ClaimStrategy, LeasedTask } from "../../store.ts";
import { CLAIM_RETURNING, type ClaimSets, leasedTask } from "../columns.ts";
import type { SqlStatement } from "../driver.ts";
import { bound, p, PreparedSql, statusAllows } from "../sql.ts";
import { HELD_QUEUES } from "./queues.ts";

/** Weighted-random claims draw from this many best-priority candidates, so a claim never scans the queue. */
const WEIGHTED_CANDIDATES = 1000;

const CLAIM_ORDER: Record<Exclude<ClaimStrategy, "weighted_random">, SQL> = {
  priority: sql.raw("priority, run_after, id"),
  fifo: sql.raw("id"),
  lifo: sql.raw("id DESC"),
};

/** The claim order again, for the rows RETURNING hands back in no promised order. */
const CLAIM_SORT: Record<ClaimStrategy, (a: Task, b: Task) => number> = {
  priority: (a, b) => a.priority - b.priority || a.runAfter - b.runAfter || a.id - b.id,
  fifo: (a, b) => a.id - b.id,
  lifo: (a, b) => b.id - a.id,
  weighted_random: () => 0,
};

/**
 * The index that lets fifo and lifo claims walk queued tasks by id, with each one's due time at hand so
 * that tasks not yet due are passed over without reading their rows. Only workers using those strategies
 * need it, so only they create it, and queues that never use them do not pay for it on every write.
 */
export const ORDER_INDEX =
  sql`CREATE INDEX IF NOT EXISTS task_queue_queued_id ON task_queue (id, run_after, queue) WHERE status = 'queued'`;

/** Whether claims by `strategy` need {@link ORDER_INDEX}. */
export function needsOrderIndex(strategy: ClaimStrategy): boolean {
  return strategy === "fifo" || strategy === "lifo";
}

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
  const ofTypes = typed
    // Unary + keeps SQLite walking the claim index in order instead of sorting every task of these types.
    ? sql`AND +type IN (SELECT value FROM json_each(${p("types")}))`
    : sql``;
  const ofQueues = sql`${
    scope === "listed" ? sql`AND queue IN (SELECT value FROM json_each(${p("queues")}))` : sql``
  } AND queue NOT IN ${HELD_QUEUES}`;
  const runnable = sql`status = 'queued' AND run_after <= ${p("now")} ${ofTypes} ${ofQueues}`;
  const ordered = strategy === "weighted_random"
    // Exponential race: a task's chance to come first is proportional to 1 / (1 + priority).
    ? sql`
      SELECT id FROM (
        SELECT id, priority FROM task_queue WHERE ${runnable}
        ORDER BY ${CLAIM_ORDER.priority} LIMIT ${sql.raw(String(WEIGHTED_CANDIDATES))}
      )
      ORDER BY -ln((abs(random()) % 1000000 + 1) / 1000000.0) * (1 + max(priority, 0)) LIMIT ${
      bound(p("limit"))
    }`
    : sql`SELECT id FROM task_queue WHERE ${runnable} ORDER BY ${CLAIM_ORDER[strategy]} LIMIT ${
      bound(p("limit"))
    }`;
  // The first `start` in claim order start at once, and their attempt counts now; the others are claimed
  // ahead, their attempts untouched and started_at null until they start.
  const starts = sql`c.rank <= ${p("start")}`;
  prepared = new PreparedSql(sql`
    UPDATE task_queue SET
      status = 'running', attempts = attempts + (${starts}), locked_by = ${p("workerId")},
      lease_token = lower(hex(randomblob(12))), lease_until = ${p("leaseUntil")},
      started_at = CASE WHEN ${starts} THEN ${p("now")} END, updated_at = ${p("now")}
    FROM (SELECT id AS claimed_id, row_number() OVER () AS rank FROM (${ordered})) AS c
    WHERE task_queue.id = c.claimed_id AND task_queue.${statusAllows("claim")}
    RETURNING ${CLAIM_RETURNING}`);
  CLAIMS.set(key, prepared);
  return prepared;
}

/**
 * The claim for `params`, its rows as values (see {@link leasedFrom}). Needs {@link ORDER_INDEX} for fifo
 * and lifo.
 */
export function claimStatement(params: ClaimParams): SqlStatement {
  const { now, limit, strategy, types, queues } = params;
  const scope = queues !== undefined ? "listed" : "all";
  const statement = claimQuery(strategy, types !== undefined, scope).bind({
    now,
    limit,
    start: params.start ?? limit,
    types: types && JSON.stringify(types),
    queues: queues && JSON.stringify(queues),
    workerId: params.workerId,
    leaseUntil: now + params.leaseMs,
  });
  return { ...statement, raw: true };
}

/**
 * Claimed rows as leased tasks, those that start at once first, each part in the strategy's order
 * (RETURNING promises none).
 */
export function leasedFrom(values: unknown[][] = [], params: ClaimParams): LeasedTask[] {
  const { strategy } = params;
  const sets: ClaimSets = {
    status: "running",
    lockedBy: params.workerId,
    leaseUntil: params.now + params.leaseMs,
    updatedAt: params.now,
  };
  const leased = values.map((row) => leasedTask(row, sets));
  return leased.sort(({ task: a }, { task: b }) =>
    Number(a.startedAt === null) - Number(b.startedAt === null) || CLAIM_SORT[strategy](a, b)
  );
}
