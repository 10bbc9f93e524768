/**
 * The SQL of PostgreSQL's raw baselines, shared by the bench and its raw worker processes: what a program
 * using the `postgres` driver directly would write on PrismQ's tables, with no queue logic: no validation,
 * no fencing beyond the lease token, no grouping of outcomes with claims.
 *
 * @module
 */
import postgres from "postgres";

export const COLUMNS =
  "task_queue (type, payload, priority, max_attempts, run_after, created_at, updated_at)";

/** One task: `$1` its payload as JSON text, `$2` now. */
export const INSERT_ONE =
  `INSERT INTO ${COLUMNS} VALUES ('noop', $1::text::json, 100, 5, $2, $2, $2) RETURNING id`;

/** Many tasks: `$1` now, `$2` their payloads as a text[]. */
export const INSERT_MANY =
  `INSERT INTO ${COLUMNS} SELECT 'noop', p::json, 100, 5, $1, $1, $1 FROM unnest($2::text[]) AS p`;

/** Tasks claimed per statement by the raw drain and the raw latency worker. */
export const CLAIM_BATCH = 512;

/**
 * Claims the next tasks: `$1` the lease's end, `$2` now. Returns their ids, tokens and payloads. The ids
 * are an array (`id = ANY(ARRAY(…))`) rather than the textbook `id IN (SELECT …)`, which the planner turns
 * into a hash semi-join over a sequential scan of the whole table (8-14 ms a claim with 50,000 rows in it).
 */
export const CLAIM =
  "UPDATE task_queue SET status = 'running', attempts = attempts + 1, locked_by = 'raw', " +
  "lease_token = gen_random_uuid()::text, lease_until = $1, started_at = $2, updated_at = $2 " +
  "WHERE id = ANY(ARRAY(SELECT id FROM task_queue WHERE status = 'queued' AND run_after <= $2 " +
  `ORDER BY priority, run_after, id LIMIT ${CLAIM_BATCH} FOR UPDATE SKIP LOCKED)) ` +
  "RETURNING id, lease_token, payload::text AS payload";

/** Completes claimed tasks: `$1` now, `$2` their ids, `$3` their lease tokens. */
export const COMPLETE =
  "UPDATE task_queue t SET status = 'completed', finished_at = $1, lease_until = NULL, " +
  "lease_token = NULL, updated_at = $1 FROM unnest($2::bigint[], $3::text[]) AS f(id, token) " +
  "WHERE t.id = f.id AND t.lease_token = f.token AND t.status = 'running'";

export const LEASE_MS = 60_000;

/** The channel PrismQ's insert trigger notifies (see src/store/postgres/migrations.ts). */
export const CHANNEL = "prismq_tasks";

/**
 * A small pool on `url` that reads bigints as numbers and plans prepared statements for their values, as
 * PrismQ's does (a generic plan joins an `unnest` of 512 fences to their rows by a nested loop: 40 ms a
 * completion instead of 3).
 */
export function rawPool(url: string, max = 1): postgres.Sql {
  return postgres(url, {
    max,
    onnotice: false,
    connection: { plan_cache_mode: "force_custom_plan" },
    types: {
      bigint: { to: 20, from: [20], serialize: (v: number) => String(v), parse: (t: string) => Number(t) },
    },
  });
}

/** Runs one of the statements above, prepared (the driver's `unsafe` prepares only when told). */
export function run(sql: postgres.Sql | postgres.TransactionSql, text: string, params: unknown[]) {
  return sql.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true });
}

type Claimed = { id: number; lease_token: string; payload: string }[];

const claimNow = (sql: postgres.Sql) => {
  const now = Date.now();
  return run(sql, CLAIM, [now + LEASE_MS, now]);
};
const completeNow = (sql: postgres.Sql, rows: Claimed) =>
  run(sql, COMPLETE, [Date.now(), rows.map((row) => row.id), rows.map((row) => row.lease_token)]);

/**
 * Drains the queue by claiming batches and completing them: each statement its own transaction, or
 * (`grouped`) each batch's completion and the next claim in one transaction and one round trip, as a
 * worker that records outcomes with its next claim does. Returns the number of tasks completed.
 */
export async function drainQueue(sql: postgres.Sql, grouped: boolean): Promise<number> {
  let done = 0;
  let rows = await claimNow(sql) as unknown as Claimed;
  while (rows.length > 0) {
    done += rows.length;
    if (grouped) {
      const [, next] = await sql.batch([completeNow(sql, rows), claimNow(sql)]);
      rows = next as unknown as Claimed;
    } else {
      await completeNow(sql, rows);
      rows = await claimNow(sql) as unknown as Claimed;
    }
  }
  return done;
}

/** Claims a batch and completes it; the number of tasks claimed (0: none was queued). */
export async function claimAndComplete(sql: postgres.Sql, started: (rows: Claimed) => void): Promise<number> {
  const rows = await claimNow(sql) as unknown as Claimed;
  if (rows.length === 0) return 0;
  started(rows);
  await completeNow(sql, rows);
  return rows.length;
}
