/**
 * Named queues on PostgreSQL: their settings (limits, paused), the listing `prismq queues` shows, and which
 * queues a plain claim leaves out. Claims run concurrently here (READ COMMITTED), so a claim from a limited
 * queue first locks the queue's row (`FOR UPDATE`, in name order, so that two claims never wait for each
 * other in a cycle) and only then, in a later statement, which sees every claim committed before the lock
 * was granted, counts the queue's running tasks and claims what the limits leave (`merged_claim.ts`).
 * Claims from limited queues are thereby made one at a time; the others never touch those rows and keep
 * claiming with `SKIP LOCKED`, without waiting.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { CountAgainOps, QueueWindow } from "../../limited_claim.ts";
import type { QueueChange, QueueInfo, QueueSettings } from "../../store.ts";
import type { PgConnection, TransactionSql } from "../connection.ts";

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
 * A queue's rate window inside the transaction `tx`, for `countAgain` (`../../limited_claim.ts`): its row
 * locked (as a claim locks it) and read, paused or not, and its window written.
 */
export function windowOps(conn: PgConnection, tx: TransactionSql): CountAgainOps {
  return {
    async lockQueue(queue) {
      const [row] = await conn.rows<QueueWindow>(
        sql`
          SELECT name, concurrency_limit AS "concurrencyLimit", rate_limit AS "rateLimit",
            rate_interval_ms AS "rateIntervalMs", window_start AS "windowStart", window_count AS "windowCount",
            paused
          FROM queues WHERE name = ${queue}::text FOR UPDATE`,
        tx,
      );
      return row;
    },
    async saveWindow(queue, start, count) {
      await conn.rows(
        sql`UPDATE queues SET window_start = ${start}::bigint, window_count = ${count}::bigint
          WHERE name = ${queue}::text`,
        tx,
      );
    },
  };
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
