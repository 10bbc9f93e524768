/**
 * The idle worker of the latency benchmark (S5): a library `WorkerEngine` with default options, in a
 * process of its own, whose `noop` handler writes the task's `payload.i` and the time it started to stdout.
 * The time is read from the clock it calibrates with the benchmark's (clock.ts).
 * Prints "ready <pid>" once its loop runs; calibrates on SIGUSR1; stops on SIGTERM.
 *
 * Usage: deno run -A scripts/bench/latency_worker.ts <db> [worker id]
 */
import { writeSync } from "node:fs";
import process from "node:process";
import { QueueDatabase, TaskHandlerRegistry, WorkerEngine } from "../../mod.ts";
import { calibrateOnSignal, clockNow } from "./clock.ts";

const [dbPath, workerId = "bench-latency"] = process.argv.slice(2);
const db = new QueueDatabase(dbPath);
await db.initializeSchema();
const registry = new TaskHandlerRegistry();
registry.registerHandler("noop", (task) => {
  const startedAt = clockNow();
  // writeSync: the line is in the pipe before the handler returns, not whenever a stream buffer drains.
  writeSync(1, `${(task.payload as { i: number }).i} ${startedAt}\n`);
});
const worker = new WorkerEngine({ db, workerId, handlerRegistry: registry });
const stop = new AbortController();
process.on("SIGTERM", () => stop.abort());
const loop = worker.runLoop({ signal: stop.signal });
calibrateOnSignal();
writeSync(1, `ready ${process.pid}\n`);
await loop;
await db.close();
// The SIGTERM listener would keep the process alive.
process.exit(0);
