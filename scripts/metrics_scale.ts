/**
 * What one metrics scrape costs on a table of 1,000,000 tasks, on a SQLite file and on PostgreSQL. Not a
 * test: it prints timings, for the README's Metrics section.
 *
 * It fills a fresh database with tasks created over the last 30 days (most finished: completed, failed,
 * cancelled; the newest 20,000 queued, half of them due later; the newest 100 running), in 10 types and 5
 * queues, then times, on a clock it moves itself:
 *
 * 1. the first scrape after the upgrade that added metrics (its watermarks set as that migration sets them
 *    on a table that holds these tasks);
 * 2. a scrape after `--recent` more tasks were enqueued and finished within 15 seconds (a busy interval);
 * 3. a scrape a minute later, which folds them into the stored counters;
 * 4. a scrape with nothing new: the steady state;
 * 5. the dashboard's throughput, 60 minutes per minute;
 *
 * and prints the plan of the counters' query, to show that it reads indexes, not the table.
 *
 * Usage: deno run -A scripts/metrics_scale.ts [--db sqlite|postgres|postgres://…] [--tasks 1000000]
 *          [--recent 10000] [--keep]
 *   --db      sqlite (a file in a temporary folder), postgres (a throwaway server of the tests' fixture,
 *             on 127.0.0.1), or a postgres:// URL (a schema of its own, dropped afterwards); both by default
 *   --keep    keep the SQLite file and print its path
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { collectMetrics, ManualClock, QueueDatabase, throughput } from "../mod.ts";
import { allCounts, watermarksOf } from "../src/store/metrics_sql.ts";
import { POSTGRES_METRICS } from "../src/store/postgres/queries/metrics.ts";
import { compile as compilePg } from "../src/store/postgres/sql.ts";
import { SQLITE_METRICS } from "../src/store/sqlite/queries/metrics.ts";
import { compile as compileSqlite } from "../src/store/sqlite/sql.ts";
import { startPostgres } from "../tests/fixtures/postgres_server.ts";

const { values: args } = parseArgs({
  options: {
    db: { type: "string" },
    tasks: { type: "string", default: "1000000" },
    recent: { type: "string", default: "10000" },
    keep: { type: "boolean", default: false },
  },
});
const TASKS = Number(args.tasks);
const RECENT = Number(args.recent);
for (const [name, value] of [["--tasks", TASKS], ["--recent", RECENT]] as const) {
  if (!Number.isSafeInteger(value) || value < 1000) {
    console.error(`${name}: '${value}' is not a whole number of at least 1000.`);
    process.exit(2);
  }
}
if (args.db !== undefined && !/^(sqlite|postgres|postgres(ql)?:\/\/.*)$/.test(args.db)) {
  console.error(`--db: '${args.db}' is neither sqlite, postgres, nor a postgres:// URL.`);
  process.exit(2);
}

const DAY_MS = 86_400_000;
const BACKLOG = 20_000;
const RUNNERS = 100;

/**
 * The columns every generated task sets, and their values from `i` (1 to n), `t0` and `step` as SQL: the
 * newest `QUEUED` queued (half of them due later) and of those the newest `RUNNING` running, with `backlog`.
 */
function taskColumns(dialect: "sqlite" | "postgres", backlog: boolean): { columns: string; values: string } {
  const QUEUED = backlog ? BACKLOG : 0;
  const RUNNING = backlog ? RUNNERS : 0;
  const text = (expression: string) => dialect === "postgres" ? `(${expression})::text` : `${expression}`;
  const status = `CASE WHEN i > n - ${RUNNING} THEN 'running' WHEN i > n - ${QUEUED} THEN 'queued' ` +
    `WHEN i % 100 < 94 THEN 'completed' WHEN i % 100 < 99 THEN 'failed' ELSE 'cancelled' END`;
  const created = `(t0 + i * step)`;
  const started = `(${created} + (i * 7) % 5000)`;
  const finished = `CASE WHEN i > n - ${QUEUED} THEN NULL ELSE ${started} + (i * 13) % 3000 END`;
  return {
    columns: "type, queue, payload, status, attempts, max_attempts, run_after, created_at, updated_at, " +
      "started_at, finished_at, lease_until, lease_token, locked_by",
    values: [
      `'type_' || ${text("i % 10")}`,
      `'queue_' || ${text("i % 5")}`,
      `'{}'`,
      status,
      `CASE WHEN i > n - ${QUEUED} AND i <= n - ${RUNNING} THEN 0 WHEN i % 100 BETWEEN 94 AND 98 THEN 3 ELSE 1 END`,
      "3",
      // Half the queued tasks are due in an hour.
      `CASE WHEN i > n - ${QUEUED} AND i % 2 = 0 THEN t0 + ${31 * DAY_MS + 3_600_000} ELSE ${created} END`,
      created,
      created,
      `CASE WHEN i > n - ${QUEUED} AND i <= n - ${RUNNING} THEN NULL ELSE ${started} END`,
      finished,
      `CASE WHEN i > n - ${RUNNING} THEN t0 + ${31 * DAY_MS} ELSE NULL END`,
      `CASE WHEN i > n - ${RUNNING} THEN 'token-' || ${text("i")} ELSE NULL END`,
      `CASE WHEN i > n - ${RUNNING} THEN 'w1' ELSE NULL END`,
    ].join(", "),
  };
}

/** Inserts `n` tasks created from `t0` on, one every `step` ms, in one statement. */
async function generate(
  db: QueueDatabase,
  dialect: "sqlite" | "postgres",
  n: number,
  t0: number,
  step: number,
  backlog: boolean,
) {
  const { columns, values } = taskColumns(dialect, backlog);
  const statement = dialect === "sqlite"
    ? `WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ${n}),
         p(n, t0, step) AS (SELECT ${n}, ${t0}, ${step})
       INSERT INTO task_queue (${columns}) SELECT ${values} FROM seq, p WHERE true`
    : `INSERT INTO task_queue (${columns})
       SELECT ${values} FROM generate_series(1::bigint, ${n}::bigint) AS s(i),
         (SELECT ${n}::bigint AS n, ${t0}::bigint AS t0, ${step}::bigint AS step) AS p`;
  await db.transaction((tx) => tx.execute(statement));
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

interface Row {
  step: string;
  ms: number;
  note: string;
}

/** Fills the database at `location`, times the scrapes, and returns the rows of the report. */
async function measure(location: string, dialect: "sqlite" | "postgres", plan: () => Promise<string>) {
  const rows: Row[] = [];
  // The bulk insert of a million tasks takes longer than a request may by default.
  const db = new QueueDatabase(
    location,
    dialect === "postgres" ? { timeSource: "local", requestTimeoutMs: 600_000 } : { timeSource: "local" },
  );
  try {
    await db.initializeSchema();
    const end = Date.now();
    const t0 = end - 30 * DAY_MS;
    const filled = await timed(() => generate(db, dialect, TASKS, t0, Math.floor(30 * DAY_MS / TASKS), true));
    // As migration 11 (PostgreSQL: 9) leaves a table that held these tasks when it ran: counting from then.
    await db.transaction((tx) =>
      tx.execute(
        `UPDATE metric_rollup SET finished_until = ${end}, enqueued_until = (SELECT max(id) FROM task_queue),
          next_enqueued_until = (SELECT max(id) FROM task_queue), next_enqueued_at = ${-8.64e15}`,
      )
    );
    await db.transaction((tx) => tx.execute("ANALYZE"));
    console.error(`${dialect}: ${TASKS.toLocaleString("en")} tasks written in ${filled.ms.toFixed(0)} ms`);
    const clock = new ManualClock(end + 1000);
    const scrape = async (step: string, note: string) => {
      const { ms, value } = await timed(() => collectMetrics(db, { clock }));
      const done = value.tasks.reduce((sum, t) => sum + t.completed, 0);
      rows.push({ step, ms, note: `${note}; ${done.toLocaleString("en")} completed counted` });
    };
    await scrape("first scrape after the upgrade", "counts from the upgrade on: nothing new yet");
    clock.advance(60_000);
    await generate(
      db,
      dialect,
      RECENT,
      clock.now() - 15_000,
      Math.max(1, Math.floor(15_000 / RECENT)),
      false,
    );
    await scrape(
      `${RECENT.toLocaleString("en")} tasks finished since`,
      "counts them from their rows (the tail)",
    );
    clock.advance(61_000);
    await scrape("a minute later", "folds them into the stored counters");
    clock.advance(61_000);
    await scrape("steady state", "nothing new since the last scrape");
    const minutes = await timed(() => throughput(db, { clock }));
    rows.push({ step: "throughput, 60 minutes", ms: minutes.ms, note: "the dashboard's chart" });
    console.error(`${dialect}: plan of the counters' query:\n${await plan()}`);
  } finally {
    await db.close();
  }
  return rows;
}

const report: { db: string; rows: Row[] }[] = [];

function printReport(): void {
  console.log(`| Database | Step (${TASKS.toLocaleString("en")} tasks) | Time | What it does |`);
  console.log("| --- | --- | ---: | --- |");
  for (const { db, rows } of report) {
    for (const row of rows) console.log(`| ${db} | ${row.step} | ${row.ms.toFixed(1)} ms | ${row.note} |`);
  }
}
const which = args.db === undefined ? ["sqlite", "postgres"] : [args.db];

for (const db of which) {
  if (db === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "prismq-metrics-scale-"));
    const path = join(dir, "scale.db");
    try {
      const rows = await measure(path, "sqlite", async () => {
        const { default: Database } = await import("libsql");
        const file = new Database(path, { readonly: true });
        try {
          const { sql: text, args: bound } = compileSqlite(allCounts(SQLITE_METRICS));
          const steps = file.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...bound) as { detail: string }[];
          // The steps that read task_queue: each a SEARCH through an index, none a SCAN of the table.
          return steps.filter((step) => /task_queue/.test(step.detail)).map((step) => `  ${step.detail}`)
            .join("\n");
        } finally {
          file.close();
        }
      });
      report.push({ db: "SQLite file", rows });
      printReport();
    } finally {
      if (args.keep) console.error(`kept ${path}`);
      else rmSync(dir, { recursive: true, force: true });
    }
  } else {
    const server = db.includes("://") ? undefined : await startPostgres();
    const url = server?.url ?? db;
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    const schema = `prismq_metrics_scale_${process.pid}`;
    try {
      await admin.unsafe(`CREATE SCHEMA ${schema}`);
      const location = new URL(url);
      location.searchParams.set("search_path", schema);
      const rows = await measure(location.toString(), "postgres", async () => {
        const [marks] = await admin.unsafe(
          `SELECT finished_until AS "finishedUntil", enqueued_until AS "enqueuedUntil" FROM ${schema}.metric_rollup`,
        );
        const query = allCounts(POSTGRES_METRICS, watermarksOf(marks as never, POSTGRES_METRICS));
        const { text, params } = compilePg(query);
        await admin.unsafe(`SET search_path TO ${schema}`);
        const lines = await admin.unsafe(`EXPLAIN ${text}`, params as never[]);
        // The steps that read task_queue: index scans, no sequential scan of the table.
        return lines.map((line) => String(line["QUERY PLAN"])).filter((line) =>
          /Scan.* on task_queue/.test(line)
        )
          .map((line) => `  ${line.trim()}`).join("\n");
      });
      report.push({ db: "PostgreSQL", rows });
    } finally {
      await admin.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
      await admin.end({ timeout: 5 });
      server?.stop();
    }
  }
}

printReport();
