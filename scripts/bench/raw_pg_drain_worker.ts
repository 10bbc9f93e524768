/**
 * A worker process of PostgreSQL's raw drains (R3 from one process, R4 from four): claims up to 256 queued
 * tasks with one prepared `UPDATE … FOR UPDATE SKIP LOCKED`, completes them with a second, and exits once
 * a claim finds nothing. Each statement is its own transaction; with `grouped` (R3', R4'), each batch's
 * completion and the next claim are one transaction, sent in one round trip.
 *
 * Usage: deno run -A scripts/bench/raw_pg_drain_worker.ts <postgres url> [grouped]
 */
import process from "node:process";
import { drainQueue, rawPool } from "./raw_pg_sql.ts";

const sql = rawPool(process.argv[2]!);
await drainQueue(sql, process.argv[3] === "grouped");
await sql.end();
