/**
 * The raw baseline of the latency benchmark on PostgreSQL (R5): the least an idle worker in another
 * process can do to start a task, with no queue logic. It LISTENs on the channel PrismQ's insert trigger
 * notifies and, on every notification, claims with one prepared `UPDATE … SKIP LOCKED`; for each row it
 * writes the task's `payload.i` and the time it "started" to stdout, then marks the rows completed. A poll
 * every 100 ms stands in for a lost notification. Prints "ready <pid>" once it listens; calibrates its clock on
 * SIGUSR1 (clock.ts); stops on SIGTERM.
 *
 * Usage: deno run -A scripts/bench/raw_pg_latency_worker.ts <postgres url>
 */
import { writeSync } from "node:fs";
import process from "node:process";
import { CHANNEL, claimAndComplete, rawPool } from "./raw_pg_sql.ts";
import { calibrateOnSignal, clockNow } from "./clock.ts";

const POLL_MS = 100;
const sql = rawPool(process.argv[2]!, 2);

let claiming = false;
let again = false;
/** Claims until nothing is left; a wake-up during a claim makes it look once more. */
async function claimAll(): Promise<void> {
  if (claiming) {
    again = true;
    return;
  }
  claiming = true;
  try {
    do {
      again = false;
      while (
        await claimAndComplete(sql, (rows) => {
          for (const row of rows) {
            const { i } = JSON.parse(row.payload) as { i: number };
            writeSync(1, `${i} ${clockNow()}\n`);
          }
        }) > 0
      );
    } while (again);
  } finally {
    claiming = false;
  }
}

await sql.listen(CHANNEL, () => void claimAll());
const poll = setInterval(() => void claimAll(), POLL_MS);
process.on("SIGTERM", async () => {
  clearInterval(poll);
  await sql.end({ timeout: 1 });
  process.exit(0);
});
calibrateOnSignal();
writeSync(1, `ready ${process.pid}\n`);
