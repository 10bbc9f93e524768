/**
 * The `leaders` table: a lease per kind of work the fleet does once, taken by one worker at a time and
 * renewed by it, after River's `river_leader`. Times are the callers', corrected to the server's clock.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import type { LeaderBid } from "../../store.ts";
import type { PgConnection } from "../connection.ts";

/**
 * Takes or renews the lease of `bid.name` for `bid.leaderId` when no one holds it, its holder's has
 * expired, or the bidder holds it already; whether the bidder holds it now. One statement: a bid that
 * meets another's new row waits for it, then finds it held.
 */
export async function electLeader(conn: PgConnection, bid: LeaderBid): Promise<boolean> {
  const rows = await conn.rows(sql`
    INSERT INTO leaders AS l (name, leader_id, elected_at, expires_at)
    VALUES (${bid.name}::text, ${bid.leaderId}::text, ${bid.now}::bigint, ${bid.now + bid.ttlMs}::bigint)
    ON CONFLICT (name) DO UPDATE SET
      leader_id = excluded.leader_id,
      elected_at = CASE WHEN l.leader_id = excluded.leader_id THEN l.elected_at ELSE excluded.elected_at END,
      expires_at = excluded.expires_at
    WHERE l.leader_id = excluded.leader_id OR l.expires_at < excluded.elected_at
    RETURNING 1 AS elected`);
  return rows.length === 1;
}

/** Ends `leaderId`'s lease of `name`, if it holds it; whether it did. */
export async function resignLeader(conn: PgConnection, name: string, leaderId: string): Promise<boolean> {
  const rows = await conn.rows(
    sql`DELETE FROM leaders WHERE name = ${name}::text AND leader_id = ${leaderId}::text RETURNING 1 AS resigned`,
  );
  return rows.length === 1;
}
