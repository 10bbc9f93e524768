/**
 * Named queues: their settings (limits, paused), the listing `prismq queues` shows, and the operations a
 * claim from limited queues makes under SQLite's write lock (see `../../limited_claim.ts`). Every claim on
 * SQLite holds the write lock, so a limited queue's running tasks counted inside the claim's transaction
 * are exact: no other claim can run between the count and the claim.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { CountAgainOps, LimitedClaimOps, LimitedQueue } from "../../limited_claim.ts";
import type { ClaimParams, QueueChange, QueueInfo, QueueSettings } from "../../store.ts";
import { CLAIMED_QUEUE_AT } from "../columns.ts";
import type { Connection } from "../connection.ts";
import type { DriverTransaction, SqlStatement } from "../driver.ts";
import { all, compile } from "../sql.ts";
import { mergedClaimStatement } from "./merged_claim.ts";

/**
 * The queues a plain claim leaves out, as a subquery: paused ones, and limited ones, which only the limited
 * path claims from. On a database without such queues, the table is empty and this costs next to nothing.
 */
export const HELD_QUEUES =
  sql`(SELECT name FROM queues WHERE paused = 1 OR concurrency_limit IS NOT NULL OR rate_limit IS NOT NULL)`;

const LIMITED_WHERE = sql.raw("paused = 0 AND (concurrency_limit IS NOT NULL OR rate_limit IS NOT NULL)");

/** The held queues (paused or limited), each saying whether it is limited and not paused. */
export async function heldQueueRows(conn: Connection): Promise<{ name: string; limited: boolean }[]> {
  const rows = await all<{ name: string; limited: number }>(
    conn,
    sql`SELECT name, ${LIMITED_WHERE} AS limited FROM queues WHERE name IN ${HELD_QUEUES}`,
  );
  return rows.map((row) => ({ name: row.name, limited: Boolean(Number(row.limited)) }));
}

const LIMITED_ROWS = (listed: boolean) =>
  compile(sql`
    SELECT name, concurrency_limit AS "concurrencyLimit", rate_limit AS "rateLimit",
      rate_interval_ms AS "rateIntervalMs", window_start AS "windowStart", window_count AS "windowCount"
    FROM queues WHERE ${LIMITED_WHERE}
      ${listed ? sql`AND name IN (SELECT value FROM json_each(?))` : sql``}
    ORDER BY name`).sql;
const LIMITED_ALL = LIMITED_ROWS(false);
const LIMITED_LISTED = LIMITED_ROWS(true);

// Read from the running index (lease_until, queue) alone.
const RUNNING_IN = compile(sql`
  SELECT queue, count(*) AS n FROM task_queue
  WHERE status = 'running' AND queue IN (SELECT value FROM json_each(?)) GROUP BY queue`).sql;

const SAVE_WINDOW = "UPDATE queues SET window_start = ?, window_count = ? WHERE name = ?";

/** A queue's row, as read by {@link LIMITED_ROWS} or {@link QUEUE_WINDOW}, as a {@link LimitedQueue}. */
function limitedQueueOf(row: Record<string, unknown>): LimitedQueue {
  return {
    name: String(row.name),
    concurrencyLimit: row.concurrencyLimit === null ? null : Number(row.concurrencyLimit),
    rateLimit: row.rateLimit === null ? null : Number(row.rateLimit),
    rateIntervalMs: row.rateIntervalMs === null ? null : Number(row.rateIntervalMs),
    windowStart: row.windowStart === null ? null : Number(row.windowStart),
    windowCount: Number(row.windowCount),
  };
}

/** The limited claim's operations inside the write transaction `tx`; claims return rows of values. */
export function limitedClaimOps(tx: DriverTransaction): LimitedClaimOps<unknown[][]> {
  const run = (statement: SqlStatement) => tx.execute(statement);
  return {
    async claimMerged(params: ClaimParams, arms, withFree) {
      if (arms.length === 0 && !withFree) return [];
      return (await run(mergedClaimStatement(params, arms, withFree))).values ?? [];
    },
    async lockLimited(queues) {
      const { rows } = await run(
        queues === undefined
          ? { sql: LIMITED_ALL, args: [] }
          : { sql: LIMITED_LISTED, args: [JSON.stringify(queues)] },
      );
      return rows.map(limitedQueueOf);
    },
    async countRunning(queues) {
      const { rows } = await run({ sql: RUNNING_IN, args: [JSON.stringify(queues)] });
      return new Map(rows.map((row) => [String(row.queue), Number(row.n)]));
    },
    async saveWindow(queue, start, count) {
      await run({ sql: SAVE_WINDOW, args: [start, count, queue] });
    },
    countByQueue(rows) {
      const counts = new Map<string, number>();
      for (const row of rows) {
        const queue = row[CLAIMED_QUEUE_AT] as string;
        counts.set(queue, (counts.get(queue) ?? 0) + 1);
      }
      return counts;
    },
  };
}

const QUEUE_WINDOW = compile(sql`
  SELECT name, concurrency_limit AS "concurrencyLimit", rate_limit AS "rateLimit",
    rate_interval_ms AS "rateIntervalMs", window_start AS "windowStart", window_count AS "windowCount", paused
  FROM queues WHERE name = ?`).sql;

/** A count again's operations inside the write transaction `tx`, which holds the queue's row as a lock would. */
export function countAgainOps(tx: DriverTransaction): CountAgainOps {
  return {
    async lockQueue(queue) {
      const [row] = (await tx.execute({ sql: QUEUE_WINDOW, args: [queue] })).rows;
      if (row === undefined) return undefined;
      return {
        ...limitedQueueOf(row),
        paused: Boolean(Number(row.paused)),
      };
    },
    async saveWindow(queue, start, count) {
      await tx.execute({ sql: SAVE_WINDOW, args: [start, count, queue] });
    },
  };
}

interface SettingsRow {
  name: string;
  concurrencyLimit: number | null;
  rateLimit: number | null;
  rateIntervalMs: number | null;
  paused: number | boolean;
}

const SETTINGS = sql.raw(
  `name, concurrency_limit AS "concurrencyLimit", rate_limit AS "rateLimit", ` +
    `rate_interval_ms AS "rateIntervalMs", paused`,
);

/** A row of settings as {@link QueueSettings}. */
export function settingsOf(row: SettingsRow | undefined, name: string): QueueSettings {
  if (!row) return { name, concurrency: null, rate: null, paused: false };
  return {
    name: row.name,
    concurrency: row.concurrencyLimit === null ? null : Number(row.concurrencyLimit),
    rate: row.rateLimit === null
      ? null
      : { limit: Number(row.rateLimit), intervalMs: Number(row.rateIntervalMs) },
    paused: Boolean(Number(row.paused)),
  };
}

/** Sets the settings `change` gives, creating the queue's row if needed. A new rate starts a new window. */
export async function updateQueue(
  conn: Connection,
  name: string,
  change: QueueChange,
  now: number,
): Promise<QueueSettings> {
  const [row] = await all<SettingsRow>(
    conn,
    sql`
      INSERT INTO queues (name, concurrency_limit, rate_limit, rate_interval_ms, paused, updated_at)
      VALUES (${name}, ${change.concurrency ?? null}, ${change.rate?.limit ?? null},
        ${change.rate?.intervalMs ?? null}, ${change.paused ? 1 : 0}, ${now})
      ON CONFLICT (name) DO UPDATE SET ${sql.raw(updatedColumns(change))}
      RETURNING ${SETTINGS}`,
  );
  return settingsOf(row, name);
}

/** The SET list of an upsert of `change`: the columns it gives, from the row it tried to insert. */
export function updatedColumns(change: QueueChange): string {
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
  return sets.join(", ");
}

/** Every queue with tasks queued or running, or with settings: its settings and counts at `now`. */
export async function listQueues(conn: Connection, now: number): Promise<QueueInfo[]> {
  const settings = await all<SettingsRow>(conn, sql`SELECT ${SETTINGS} FROM queues`);
  const counts = await all<{ queue: string; queued: number; running: number; oldest: number | null }>(
    conn,
    sql`
      SELECT queue, sum(status = 'queued') AS queued, sum(status = 'running') AS running,
        min(CASE WHEN status = 'queued' AND run_after <= ${now} THEN run_after END) AS oldest
      FROM task_queue WHERE status = 'queued' OR status = 'running' GROUP BY queue`,
  );
  return queueInfos(settings.map((row) => settingsOf(row, row.name)), counts, now);
}

/** Settings and counts merged by queue name, sorted by name. */
export function queueInfos(
  settings: readonly QueueSettings[],
  counts: readonly { queue: string; queued: number; running: number; oldest: number | null }[],
  now: number,
): QueueInfo[] {
  const byName = new Map<string, QueueInfo>();
  for (const s of settings) byName.set(s.name, { ...s, queued: 0, running: 0, oldestWaitMs: null });
  for (const c of counts) {
    const info = byName.get(c.queue) ??
      { ...settingsOf(undefined, c.queue), queued: 0, running: 0, oldestWaitMs: null };
    info.queued = Number(c.queued);
    info.running = Number(c.running);
    info.oldestWaitMs = c.oldest === null ? null : Math.max(0, now - Number(c.oldest));
    byName.set(c.queue, info);
  }
  return [...byName.values()].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}
