/**
 * `deno task bench`: PrismQ's speed and memory, measured on a real database file, next to a raw-driver
 * baseline run in the same process (the ratio says how close PrismQ is to what @libsql/client allows).
 * Prints a table, checks each figure against its goal, and exits 1 when one misses.
 *
 * Usage: deno task bench [--tasks N] [--json]
 */
import { createClient } from "@libsql/client";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { Queue, QueueDatabase, TaskHandlerRegistry, WorkerEngine } from "../mod.ts";

const { values: args } = parseArgs({
  options: {
    tasks: { type: "string", default: "20000" },
    json: { type: "boolean", default: false },
    // Internal: measure memory alone, in a fresh process, so that earlier runs do not count.
    "memory-only": { type: "boolean", default: false },
  },
});
const TASKS = Number(args.tasks);
const dir = mkdtempSync(join(tmpdir(), "prismq-bench-"));
let files = 0;

interface Result {
  name: string;
  value: number;
  unit: string;
  goal?: number;
  /** For "lower is better" figures. */
  max?: boolean;
}
const results: Result[] = [];

async function freshDb(): Promise<QueueDatabase> {
  const db = new QueueDatabase(join(dir, `bench-${files++}.db`));
  await db.initializeSchema();
  return db;
}

function items(n: number) {
  return Array.from({ length: n }, (_, i) => ({ type: "noop", payload: { i, note: "benchmark task" } }));
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function enqueueOneByOne(): Promise<void> {
  const db = await freshDb();
  const queue = new Queue(db);
  const n = Math.min(TASKS, 5000);
  const start = performance.now();
  for (let i = 0; i < n; i++) await queue.enqueue("noop", { i });
  results.push({
    name: "enqueue, one call per task",
    value: n / ((performance.now() - start) / 1000),
    unit: "tasks/s",
    goal: 1500,
  });
  db.close();
}

async function enqueueBatched(): Promise<void> {
  const db = await freshDb();
  const queue = new Queue(db);
  const all = items(TASKS);
  const start = performance.now();
  for (let i = 0; i < all.length; i += 1000) await queue.enqueueMany(all.slice(i, i + 1000));
  results.push({
    name: "enqueueMany, 1,000 per call",
    value: TASKS / ((performance.now() - start) / 1000),
    unit: "tasks/s",
    goal: 20_000,
  });
  db.close();
}

async function drain(concurrency: number, goal: number): Promise<void> {
  const db = await freshDb();
  await new Queue(db).enqueueMany(items(TASKS));
  const registry = new TaskHandlerRegistry();
  registry.registerHandler("noop", () => {});
  const worker = new WorkerEngine({ db, workerId: "bench", handlerRegistry: registry, concurrency });
  const start = performance.now();
  const summary = await worker.runLoop({ untilEmpty: true });
  const seconds = (performance.now() - start) / 1000;
  if (summary.completed !== TASKS) throw new Error(`completed ${summary.completed} of ${TASKS}`);
  results.push({
    name: `no-op tasks, 1 worker, concurrency ${concurrency}`,
    value: TASKS / seconds,
    unit: "tasks/s",
    goal,
  });
  db.close();
}

/** Time from enqueue to handler start for tasks enqueued one at a time into an idle worker. */
async function latency(): Promise<void> {
  const db = await freshDb();
  const queue = new Queue(db);
  const registry = new TaskHandlerRegistry();
  const latencies: number[] = [];
  let started: (() => void) | null = null;
  registry.registerHandler("noop", (task) => {
    latencies.push(Date.now() - task.createdAt);
    started?.();
  });
  const worker = new WorkerEngine({
    db,
    workerId: "latency",
    handlerRegistry: registry,
    pollIntervalMs: 1000,
  });
  const loop = worker.runLoop();
  for (let i = 0; i < 500; i++) {
    const ran = new Promise<void>((resolve) => (started = resolve));
    await queue.enqueue("noop", { i });
    await ran;
  }
  await worker.stop();
  await loop;
  latencies.sort((a, b) => a - b);
  results.push({
    name: "enqueue-to-start latency, p50",
    value: percentile(latencies, 0.5),
    unit: "ms",
    goal: 2,
    max: true,
  });
  // The tail includes SQLite's WAL checkpoints, which now and then write back and fsync ~1,000 pages.
  results.push({
    name: "enqueue-to-start latency, p99",
    value: percentile(latencies, 0.99),
    unit: "ms",
    goal: 25,
    max: true,
  });
  db.close();
}

/**
 * A minimal claim-then-complete loop written directly against @libsql/client, one task at a time: one
 * partial index, no lease token, no attempts, no JSON. The floor for one task per transaction pair.
 */
async function rawBaseline(): Promise<void> {
  const path = join(dir, `raw-${files++}.db`);
  const client = createClient({ url: `file:${path}`, concurrency: 1 });
  await client.execute("PRAGMA journal_mode = WAL");
  await client.execute("PRAGMA synchronous = NORMAL");
  await client.execute(
    "CREATE TABLE jobs (id INTEGER PRIMARY KEY, payload TEXT, status TEXT NOT NULL, lease INTEGER)",
  );
  await client.execute("CREATE INDEX jobs_queued ON jobs (id) WHERE status = 'queued'");
  const n = Math.min(TASKS, 5000);
  await client.execute({
    sql: "INSERT INTO jobs (payload, status) SELECT value, 'queued' FROM json_each(?)",
    args: [JSON.stringify(Array.from({ length: n }, (_, i) => JSON.stringify({ i })))],
  });
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const claimed = await client.execute({
      sql:
        "UPDATE jobs SET status = 'running', lease = ? WHERE id = (SELECT id FROM jobs WHERE status = 'queued' " +
        "ORDER BY id LIMIT 1) RETURNING id, payload",
      args: [Date.now() + 60_000],
    });
    JSON.parse(claimed.rows[0].payload as string);
    await client.execute({
      sql: "UPDATE jobs SET status = 'completed', lease = NULL WHERE id = ? AND status = 'running'",
      args: [claimed.rows[0].id],
    });
  }
  results.push({
    name: "minimal raw @libsql/client loop, 1 at a time",
    value: n / ((performance.now() - start) / 1000),
    unit: "tasks/s",
  });
  client.close();
}

/** Runs {@link memory} in a fresh process and takes its figure. */
async function memoryInChild(): Promise<void> {
  const { execFileSync } = await import("node:child_process");
  const script = new URL(import.meta.url).pathname;
  const output = execFileSync(process.execPath, ["run", "-A", script, "--memory-only", `--tasks=${TASKS}`], {
    encoding: "utf8",
  });
  results.push(JSON.parse(output));
}

async function memory(): Promise<void> {
  const db = await freshDb();
  const n = Math.max(TASKS, 50_000);
  const queue = new Queue(db);
  const all = items(n);
  for (let i = 0; i < all.length; i += 5000) await queue.enqueueMany(all.slice(i, i + 5000));
  const registry = new TaskHandlerRegistry();
  registry.registerHandler("noop", () => {});
  const worker = new WorkerEngine({ db, workerId: "memory", handlerRegistry: registry, concurrency: 32 });
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  await worker.runLoop({ untilEmpty: true });
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  results.push({
    name: `peak RSS while draining ${n.toLocaleString("en")} tasks`,
    value: peak / 2 ** 20,
    unit: "MiB",
    goal: 300,
    max: true,
  });
  db.close();
}

if (args["memory-only"]) {
  await memory();
  rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify(results[0]));
  process.exit(0);
}

try {
  await enqueueOneByOne();
  await enqueueBatched();
  await drain(1, 800);
  await drain(8, 3000);
  await drain(32, 6000);
  await rawBaseline();
  await latency();
  await memoryInChild();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const raw = results.find((r) => r.name.startsWith("minimal raw"))!.value;
const single = results.find((r) => r.name.endsWith("concurrency 1"))!.value;
const missed = results.filter((r) => r.goal !== undefined && (r.max ? r.value > r.goal : r.value < r.goal));
if (args.json) {
  console.log(
    JSON.stringify({ runtime: runtimeName(), tasks: TASKS, results, ratioToRaw: single / raw }, null, 2),
  );
} else {
  console.log(`PrismQ benchmark on ${runtimeName()}, ${TASKS.toLocaleString("en")} tasks per run\n`);
  const width = Math.max(...results.map((r) => r.name.length));
  for (const r of results) {
    const goal = r.goal === undefined ? "" : `  (goal ${r.max ? "≤" : "≥"} ${r.goal.toLocaleString("en")})`;
    const value = r.value >= 100 ? Math.round(r.value).toLocaleString("en") : r.value.toFixed(1);
    console.log(
      `${r.name.padEnd(width)}  ${value.padStart(9)} ${r.unit}${goal}${missed.includes(r) ? "  MISSED" : ""}`,
    );
  }
  console.log(
    `\nconcurrency 1 runs at ${(100 * single / raw).toFixed(0)} % of the minimal raw loop.`,
  );
}
process.exit(missed.length === 0 ? 0 : 1);

function runtimeName(): string {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (g.Deno) return `Deno ${g.Deno.version.deno}`;
  if (g.Bun) return `Bun ${g.Bun.version}`;
  return `Node ${process.version}`;
}
