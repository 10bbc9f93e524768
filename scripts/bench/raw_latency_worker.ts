/**
 * The raw baseline of the latency benchmark (R5): the least an idle worker in another process can do to
 * start a task, with no queue logic. It watches the file's write-ahead log as PrismQ's worker does, and on
 * every change claims with one prepared UPDATE … RETURNING on the engine PrismQ runs files on; for each row
 * it writes the task's `payload.i` and the time it "started" to stdout, then marks the rows completed. A poll every
 * 100 ms stands in for a change it saw before the commit became visible. Prints "ready <pid>" once it
 * watches; calibrates its clock on
 * SIGUSR1 (clock.ts); stops on SIGTERM.
 *
 * Usage: deno run -A scripts/bench/raw_latency_worker.ts <db>
 */
import { watch, writeSync } from "node:fs";
import process from "node:process";
import { chooseEngine } from "../../src/store/sqlite/engines.ts";
import { calibrateOnSignal, clockNow } from "./clock.ts";

const [dbPath] = process.argv.slice(2);
const LEASE_MS = 60_000;
const POLL_MS = 100;

const db = chooseEngine().open(dbPath);
db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000");
const claim = db.prepare(
  "UPDATE task_queue SET status = 'running', attempts = attempts + 1, locked_by = 'raw', " +
    "lease_token = lower(hex(randomblob(12))), lease_until = ?, started_at = ?, updated_at = ? " +
    "WHERE id IN (SELECT id FROM task_queue WHERE status = 'queued' AND run_after <= ? " +
    "ORDER BY priority, run_after, id LIMIT 256) RETURNING id, payload ->> 'i' AS i",
  false,
);
const complete = db.prepare(
  "UPDATE task_queue SET status = 'completed', finished_at = ?, lease_until = NULL, lease_token = NULL, " +
    "updated_at = ? WHERE id IN (SELECT value FROM json_each(?)) AND status = 'running'",
  false,
);

function claimAndRun(): void {
  const now = Date.now();
  const rows = claim.all([now + LEASE_MS, now, now, now]) as { id: number; i: number }[];
  if (rows.length === 0) return;
  for (const row of rows) writeSync(1, `${row.i} ${clockNow()}\n`);
  const done = Date.now();
  complete.run([done, done, JSON.stringify(rows.map((row) => row.id))]);
}

const watcher = watch(`${dbPath}-wal`, { persistent: false }, claimAndRun);
const poll = setInterval(claimAndRun, POLL_MS);
process.on("SIGTERM", () => {
  watcher.close();
  clearInterval(poll);
  db.close();
  process.exit(0);
});
calibrateOnSignal();
writeSync(1, `ready ${process.pid}\n`);
