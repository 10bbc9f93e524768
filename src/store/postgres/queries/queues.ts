/**
 * Named queues on PostgreSQL: their settings (limits, paused), the listing `prismq queues` shows, which
 * queues a plain claim leaves out, and the count again of tasks claimed ahead past their rate window. Claims run concurrently here (READ COMMITTED), so a claim from a limited
 * queue first locks the queue's row (`FOR UPDATE`, in name order, so that two claims never wait for each
 * other in a cycle) and only then, in a later statement, which sees every claim committed before the lock
 * was granted, counts the queue's running tasks and claims what the limits leave (`merged_claim.ts`).
 * Claims from limited queues are thereby made one at a time; the others never touch those rows and keep
 * claiming with `SKIP LOCKED`, without waiting.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { QueueChange, QueueInfo, QueueSettings } from "../../store.ts";
import type { PgConnection } from "../connection.ts";
import { p, PreparedSql, type Statement } from "../sql.ts";

/**
 * The queues a plain claim leaves out, as a subquery: paused ones, and limited ones, which only the limited
 * path claims from. On a database without such queues, the table is empty and this costs next to nothing.
 */
export const HELD_QUEUES =
  sql`(SELECT name FROM queues WHERE paused OR concurrency_limit IS NOT NULL OR rate_limit IS NOT NULL)`;

const LIMITED_WHERE = sql.raw("NOT paused AND (concurrency_limit IS NOT NULL OR rate_limit IS NOT NULL)");

/** The held queues (paused or limited), each saying whether it is limited and not paused. */
export function heldQueueRows(conn: PgConnection): Promise<{ name: string; limited: boolean }[]> {
  return conn.rows<{ name: string; limited: boolean }>(
    sql`SELECT name, ${LIMITED_WHERE} AS limited FROM queues WHERE name = ANY(ARRAY${HELD_QUEUES})`,
  );
}

/**
 * The rate window of the queue's row `q` at the time `now` (a placeholder), as lateral joins that give its
 * start and the claims counted in it so far as `w.start` and `w.count`: the window `now` falls in (aligned
 * to epoch time), or the queue's own when that is as late or later (`currentWindow` of
 * `../../limited_claim.ts`).
 */
export const CURRENT_WINDOW = sql`
      CROSS JOIN LATERAL (SELECT coalesce(q.rate_interval_ms, 1) AS ms) AS i
      CROSS JOIN LATERAL (SELECT ${p("now")}::bigint / i.ms * i.ms AS start) AS aligned
      CROSS JOIN LATERAL (
        SELECT CASE WHEN q.window_start >= aligned.start THEN q.window_start ELSE aligned.start END AS start,
          CASE WHEN q.window_start >= aligned.start THEN q.window_count ELSE 0 END AS count
      ) AS w`;

/**
 * `Store.queueCountAgain` in one statement (`countAgain` of `../../limited_claim.ts`, which SQLite runs):
 * the queue's row locked `FOR UPDATE` (waiting for any claim or count that holds it, then read as that left
 * it), what its rate window has room for counted in it and written, and the end of that window returned.
 * The count and the write are made from the row as locked: the UPDATE of a row that another transaction
 * changed since the statement began is made again on its newest version, with the values worked out from
 * the lock's read of that version. No row (no settings): no row returned.
 */
const COUNT_AGAIN = new PreparedSql(sql`
  WITH q AS MATERIALIZED (
    SELECT name, paused, rate_limit, rate_interval_ms, window_start, window_count
    FROM queues WHERE name = ${p("queue")}::text FOR UPDATE
  ),
  counts AS MATERIALIZED (
    SELECT q.name, q.rate_limit IS NOT NULL AND NOT q.paused AS rated, w.start, w.count,
      w.start + q.rate_interval_ms AS start_by,
      CASE WHEN q.paused THEN 0 WHEN q.rate_limit IS NULL THEN ${p("n")}::bigint
        ELSE greatest(0, least(${p("n")}::bigint, q.rate_limit - w.count)) END AS counted
    FROM q ${CURRENT_WINDOW}
  ),
  saved AS (
    UPDATE queues SET window_start = c.start, window_count = c.count + c.counted
    FROM counts c WHERE queues.name = c.name AND c.rated AND c.counted > 0
  )
  SELECT counted, CASE WHEN rated THEN start_by END AS "startBy" FROM counts`);

/**
 * See {@link COUNT_AGAIN}: one row of `counted` and `startBy`, or none when the queue has no settings.
 */
export function countAgainStatement(queue: string, n: number, now: number): Statement {
  return COUNT_AGAIN.bind({ queue, n, now });
}

interface SettingsRow {
  name: string;
  concurrencyLimit: number | null;
  rateLimit: number | null;
  rateIntervalMs: number | null;
  paused: boolean;
}

const SETTINGS = sql.raw(
  `name, concurrency_limit AS "concurrencyLimit", rate_limit AS "rateLimit", ` +
    `rate_interval_ms AS "rateIntervalMs", paused`,
);

function settingsOf(row: SettingsRow): QueueSettings {
  return {
    name: row.name,
    concurrency: row.concurrencyLimit,
    rate: row.rateLimit === null ? null : { limit: row.rateLimit, intervalMs: row.rateIntervalMs! },
    paused: row.paused,
  };
}

/** Sets the settings `change` gives, creating the queue's row if needed. A new rate starts a new window. */
export async function updateQueue(
  conn: PgConnection,
  name: string,
  change: QueueChange,
  now: number,
): Promise<QueueSettings> {
  const sets = ["updated_at = excluded.updated_at"];
  if (change.concurrency !== undefined) sets.push("concurrency_limit = excluded.concurrency_limit");
  if (change.rate !== undefined) {
    sets.push(
      "rate_limit = excluded.rate_limit",
      "rate_interval_ms = excluded.rate_interval_ms",
      "window_start = NULL",
      "window_count = 0",
    );
  }
  if (change.paused !== undefined) sets.push("paused = excluded.paused");
  const [row] = await conn.rows<SettingsRow>(sql`
    INSERT INTO queues (name, concurrency_limit, rate_limit, rate_interval_ms, paused, updated_at)
    VALUES (${name}::text, ${change.concurrency ?? null}::bigint, ${change.rate?.limit ?? null}::bigint,
      ${change.rate?.intervalMs ?? null}::bigint, ${change.paused ?? false}::boolean, ${now}::bigint)
    ON CONFLICT (name) DO UPDATE SET ${sql.raw(sets.join(", "))}
    RETURNING ${SETTINGS}`);
  return settingsOf(row!);
}

/** Every queue with tasks queued or running, or with settings: its settings and counts at `now`. */
export async function listQueues(conn: PgConnection, now: number): Promise<QueueInfo[]> {
  const [settings, counts] = await Promise.all([
    conn.rows<SettingsRow>(sql`SELECT ${SETTINGS} FROM queues`),
    conn.rows<{ queue: string; queued: number; running: number; oldest: number | null }>(sql`
      SELECT queue, count(*) FILTER (WHERE status = 'queued')::bigint AS queued,
        count(*) FILTER (WHERE status = 'running')::bigint AS running,
        min(run_after) FILTER (WHERE status = 'queued' AND run_after <= ${now}::bigint) AS oldest
      FROM task_queue WHERE status IN ('queued', 'running') GROUP BY queue`),
  ]);
  const byName = new Map<string, QueueInfo>();
  for (const row of settings) {
    byName.set(row.name, { ...settingsOf(row), queued: 0, running: 0, oldestWaitMs: null });
  }
  for (const c of counts) {
    const info = byName.get(c.queue) ??
      {
        name: c.queue,
        concurrency: null,
        rate: null,
        paused: false,
        queued: 0,
        running: 0,
        oldestWaitMs: null,
      };
    info.queued = Number(c.queued);
    info.running = Number(c.running);
    info.oldestWaitMs = c.oldest === null ? null : Math.max(0, now - Number(c.oldest));
    byName.set(c.queue, info);
  }
  return [...byName.values()].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}
