/**
 * Numbered schema migrations, compiled into the code so that a single binary never reads SQL from disk.
 * Append new ones; never edit one that has shipped. Over 400 lines: SQL text, one migration after another.
 *
 * @module
 */

export interface Migration {
  version: number;
  name: string;
  sql: string;
  /** A query whose first column counts rows the migration cannot take; when not 0, it fails with `message`. */
  precondition?: { sql: string; message: string };
}

/** "Now" in epoch milliseconds, as migration 1 wrote it: `unixepoch('subsec')` needs SQLite 3.42. */
const NOW_MS = "(CAST(unixepoch('subsec') * 1000 AS INTEGER))";

/** "Now" in epoch milliseconds on every SQLite since 3.0 (Debian 12's 3.40 among them). */
const PORTABLE_NOW_MS = "(CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER))";

/** The latest time a JavaScript Date can hold, in epoch milliseconds; the earliest is its negation. */
const TIME_LIMIT = 8640000000000000;

/**
 * A time column's CHECK: within a Date's range (the table is STRICT, so it is an integer already). A NULL
 * passes a CHECK, so nullable columns need no more.
 */
function timeCheck(column: string): string {
  return `CHECK (${column} BETWEEN -${TIME_LIMIT} AND ${TIME_LIMIT})`;
}

/** A time column as copied into the stricter table: kept when valid, clamped into range otherwise. */
function timeCopy(column: string): string {
  return `CASE WHEN ${column} IS NULL OR (typeof(${column}) = 'integer' AND abs(${column}) <= ${TIME_LIMIT}) ` +
    `THEN ${column} ELSE CAST(max(-${TIME_LIMIT}, min(${TIME_LIMIT}, ${column})) AS INTEGER) END`;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "initial",
    sql: `
CREATE TABLE task_queue (
  id INTEGER PRIMARY KEY,
  type TEXT NOT NULL CHECK (length(trim(type)) > 0),
  priority INTEGER NOT NULL DEFAULT 100,
  payload TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(payload)),
  -- Spelled with OR: SQLite evaluates a CHECK with an IN list far more slowly (it halved bulk inserts).
  status TEXT NOT NULL DEFAULT 'queued' CHECK (
    status = 'queued' OR status = 'running' OR status = 'completed' OR status = 'failed' OR status = 'cancelled'
  ),
  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
  error_message TEXT,
  idempotency_key TEXT,
  locked_by TEXT,
  timeout_ms INTEGER CHECK (timeout_ms IS NULL OR timeout_ms > 0),
  run_after INTEGER NOT NULL DEFAULT ${NOW_MS},
  lease_until INTEGER,
  lease_token TEXT,
  created_at INTEGER NOT NULL DEFAULT ${NOW_MS},
  updated_at INTEGER NOT NULL DEFAULT ${NOW_MS},
  started_at INTEGER,
  finished_at INTEGER,
  CHECK (status <> 'running' OR (lease_until IS NOT NULL AND lease_token IS NOT NULL))
);
-- Every index a write touches costs a page written per commit, which is most of what an enqueue, a claim
-- and a completion cost. So: no AUTOINCREMENT (its sqlite_sequence row is one more page per insert; purge
-- keeps the newest task so that ids are never reused), no index on type, and status only in partial-index
-- conditions, which queries must spell as literals to use. The index the fifo and lifo strategies need is
-- created by the first worker that uses one of them (see ORDER_INDEX in store.ts).
CREATE UNIQUE INDEX task_queue_idempotency_key ON task_queue (idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX task_queue_queued_priority ON task_queue (priority, id) WHERE status = 'queued';
CREATE INDEX task_queue_running_lease ON task_queue (lease_until) WHERE status = 'running';
CREATE INDEX task_queue_finished ON task_queue (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE workers (
  id TEXT PRIMARY KEY,
  host TEXT,
  pid INTEGER,
  started_at INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL,
  concurrency INTEGER NOT NULL,
  handler_types TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(handler_types))
);

CREATE TABLE task_logs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id INTEGER NOT NULL REFERENCES task_queue (id) ON DELETE CASCADE,
  at INTEGER NOT NULL,
  level TEXT NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
  message TEXT NOT NULL,
  details TEXT CHECK (details IS NULL OR json_valid(details))
);
CREATE INDEX task_logs_task ON task_logs (task_id, id);
`,
  },
  {
    version: 2,
    name: "claim index with due time",
    // Due time before id: a claim stops after the tasks it takes, however many wait for a later time
    // (retries, scheduled tasks), where with (priority, id) it read every one of those on every claim and
    // idle look. The fifo/lifo index is dropped so that the first worker using them recreates it with the
    // due time too (see ORDER_INDEX in queries/claim.ts).
    sql: `
DROP INDEX task_queue_queued_priority;
CREATE INDEX task_queue_queued_priority ON task_queue (priority, run_after, id) WHERE status = 'queued';
DROP INDEX IF EXISTS task_queue_queued_id;
`,
  },
  {
    version: 3,
    name: "attempts counted at start",
    // Tasks claimed ahead of free slots have their attempt counted when they start, not when claimed
    // (started_at is null until then); this marks the ones whose worker died holding them, which may have
    // started unrecorded. Adding a column with a constant default rewrites no rows, so it is instant, and
    // processes still running the previous version keep working.
    sql: `
ALTER TABLE task_queue ADD COLUMN unconfirmed_start INTEGER NOT NULL DEFAULT 0
  CHECK (unconfirmed_start = 0 OR unconfirmed_start = 1);
`,
  },
  {
    version: 4,
    name: "portable defaults, strict values",
    // The defaults "now" work on SQLite 3.37+ (plain SQL from Debian's sqlite3 3.40 left run_after NULL),
    // and the table refuses what no PrismQ process can read back: times that are not integers within a
    // Date's range (a REAL 1e300 broke 'prismq show' for good), counts that are not integers, and ids past
    // 2^53, which JavaScript rounds. STRICT (SQLite 3.37+) makes each column hold its type only, which costs
    // a bulk insert far less than a typeof() CHECK per column. SQLite cannot change a column's default or add a CHECK in place, so the
    // table is rebuilt, values written before these checks made valid on the way; task_logs, which
    // references it, is rebuilt around it with its rows kept. All in the one migration transaction.
    precondition: {
      sql: "SELECT count(*) FROM task_queue WHERE id < 1 OR id > 9007199254740991",
      message: "Some tasks have ids below 1 or above 9007199254740991 (2^53 - 1), which JavaScript " +
        "cannot hold exactly. Give them smaller ids, or delete them, with plain SQL, then start PrismQ again.",
    },
    sql: `
CREATE TABLE task_queue_v4 (
  id INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 9007199254740991),
  type TEXT NOT NULL CHECK (length(trim(type)) > 0),
  priority INTEGER NOT NULL DEFAULT 100,
  payload TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(payload)),
  status TEXT NOT NULL DEFAULT 'queued' CHECK (
    status = 'queued' OR status = 'running' OR status = 'completed' OR status = 'failed' OR status = 'cancelled'
  ),
  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
  error_message TEXT,
  idempotency_key TEXT,
  locked_by TEXT,
  timeout_ms INTEGER CHECK (timeout_ms > 0),
  run_after INTEGER NOT NULL DEFAULT ${PORTABLE_NOW_MS} ${timeCheck("run_after")},
  lease_until INTEGER ${timeCheck("lease_until")},
  lease_token TEXT,
  created_at INTEGER NOT NULL DEFAULT ${PORTABLE_NOW_MS} ${timeCheck("created_at")},
  updated_at INTEGER NOT NULL DEFAULT ${PORTABLE_NOW_MS} ${timeCheck("updated_at")},
  started_at INTEGER ${timeCheck("started_at")},
  finished_at INTEGER ${timeCheck("finished_at")},
  unconfirmed_start INTEGER NOT NULL DEFAULT 0 CHECK (unconfirmed_start = 0 OR unconfirmed_start = 1),
  CHECK (status <> 'running' OR (lease_until IS NOT NULL AND lease_token IS NOT NULL))
) STRICT;
INSERT INTO task_queue_v4 (
  id, type, priority, payload, status, attempts, max_attempts, error_message, idempotency_key, locked_by,
  timeout_ms, run_after, lease_until, lease_token, created_at, updated_at, started_at, finished_at,
  unconfirmed_start
)
SELECT
  id, type, CAST(priority AS INTEGER), payload, status, max(CAST(attempts AS INTEGER), 0),
  max(CAST(max_attempts AS INTEGER), 1), error_message, idempotency_key, locked_by,
  CASE WHEN timeout_ms IS NULL THEN NULL ELSE max(CAST(timeout_ms AS INTEGER), 1) END,
  ${timeCopy("run_after")}, ${timeCopy("lease_until")}, lease_token, ${timeCopy("created_at")},
  ${timeCopy("updated_at")}, ${timeCopy("started_at")}, ${timeCopy("finished_at")}, unconfirmed_start
FROM task_queue;
CREATE TABLE task_logs_v4 AS SELECT * FROM task_logs;
DROP TABLE task_logs;
DROP TABLE task_queue;
ALTER TABLE task_queue_v4 RENAME TO task_queue;
CREATE UNIQUE INDEX task_queue_idempotency_key ON task_queue (idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX task_queue_queued_priority ON task_queue (priority, run_after, id) WHERE status = 'queued';
CREATE INDEX task_queue_running_lease ON task_queue (lease_until) WHERE status = 'running';
CREATE INDEX task_queue_finished ON task_queue (finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE task_logs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id INTEGER NOT NULL REFERENCES task_queue (id) ON DELETE CASCADE,
  at INTEGER NOT NULL,
  level TEXT NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
  message TEXT NOT NULL,
  details TEXT CHECK (details IS NULL OR json_valid(details))
);
INSERT INTO task_logs (id, task_id, at, level, message, details)
  SELECT id, task_id, at, level, message, details FROM task_logs_v4 WHERE task_id IN (SELECT id FROM task_queue);
DROP TABLE task_logs_v4;
CREATE INDEX task_logs_task ON task_logs (task_id, id);
`,
  },
  {
    version: 5,
    name: "strict task logs",
    // The logs get what migration 4 gave the tasks: ids JavaScript holds exactly, and times that are
    // integers within a Date's range (STRICT, and a CHECK). Rebuilt as migration 4 rebuilt task_queue, in
    // the one migration transaction, so that another process starting at the same time waits for it and
    // then finds it applied; processes already running go on writing logs, which were valid before. The
    // id sequence is carried over, so that the id of a deleted log is never given again.
    precondition: {
      sql: "SELECT count(*) FROM task_logs WHERE id < 1 OR id > 9007199254740991",
      message: "Some task logs have ids below 1 or above 9007199254740991 (2^53 - 1), which JavaScript " +
        "cannot hold exactly. Give them smaller ids, or delete them, with plain SQL, then start PrismQ again.",
    },
    sql: `
CREATE TABLE task_logs_v5 (
  id INTEGER PRIMARY KEY AUTOINCREMENT CHECK (id BETWEEN 1 AND 9007199254740991),
  task_id INTEGER NOT NULL REFERENCES task_queue (id) ON DELETE CASCADE,
  at INTEGER NOT NULL ${timeCheck("at")},
  level TEXT NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
  message TEXT NOT NULL,
  details TEXT CHECK (details IS NULL OR json_valid(details))
) STRICT;
INSERT INTO sqlite_sequence (name, seq) SELECT 'task_logs_v5', seq FROM sqlite_sequence WHERE name = 'task_logs';
INSERT INTO task_logs_v5 (id, task_id, at, level, message, details)
  SELECT id, task_id, ${timeCopy("at")}, level, CAST(message AS TEXT), details FROM task_logs
  WHERE task_id IN (SELECT id FROM task_queue);
DROP TABLE task_logs;
ALTER TABLE task_logs_v5 RENAME TO task_logs;
CREATE INDEX task_logs_task ON task_logs (task_id, id);
`,
  },
  {
    version: 6,
    name: "schedules",
    // One row per schedule: the slot it last fired, advanced by compare-and-set in the transaction that
    // enqueues that slot's task, so that each slot fires once even after its task is purged. No reference
    // to the task: purging it must not touch the schedule. Not STRICT, as workers: a STRICT table's text
    // primary key is NOT NULL, which Drizzle's schema cannot say; the CHECKs refuse times that are not numbers.
    sql: `
CREATE TABLE schedules (
  name TEXT PRIMARY KEY,
  since INTEGER NOT NULL ${timeCheck("since")},
  last_slot INTEGER ${timeCheck("last_slot")},
  last_task_id INTEGER,
  fired_at INTEGER ${timeCheck("fired_at")}
);
`,
  },
  {
    version: 7,
    name: "retry policies, results, progress",
    // Three JSON columns, NULL for every task there is: a task's own backoff (`retry` at enqueue), its
    // handler's result, and its last progress. Adding nullable columns rewrites no row. `IS NULL OR`: before
    // SQLite 3.45 (Debian 12's 3.40, say) json_valid(NULL) is 0, which would refuse plain inserts.
    sql: `
ALTER TABLE task_queue ADD COLUMN retry_policy TEXT CHECK (retry_policy IS NULL OR json_valid(retry_policy));
ALTER TABLE task_queue ADD COLUMN result TEXT CHECK (result IS NULL OR json_valid(result));
ALTER TABLE task_queue ADD COLUMN progress TEXT CHECK (progress IS NULL OR json_valid(progress));
`,
  },
  {
    version: 8,
    name: "named queues",
    // Every task belongs to a queue, 'default' for those made before. A column with a constant default
    // rewrites no rows. The queue joins the claim index last, so that claims keep their order and read the
    // queue from the index, and the running index, so that a limited queue's running tasks are counted
    // from it. Queues with settings (limits, paused) get a row of their own.
    sql: `
ALTER TABLE task_queue ADD COLUMN queue TEXT NOT NULL DEFAULT 'default' CHECK (length(queue) BETWEEN 1 AND 128);
DROP INDEX task_queue_queued_priority;
CREATE INDEX task_queue_queued_priority ON task_queue (priority, run_after, id, queue) WHERE status = 'queued';
DROP INDEX task_queue_running_lease;
CREATE INDEX task_queue_running_lease ON task_queue (lease_until, queue) WHERE status = 'running';
DROP INDEX IF EXISTS task_queue_queued_id;
CREATE TABLE queues (
  name TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 128),
  concurrency_limit INTEGER CHECK (concurrency_limit >= 1),
  rate_limit INTEGER CHECK (rate_limit >= 1),
  rate_interval_ms INTEGER CHECK (rate_interval_ms >= 1),
  paused INTEGER NOT NULL DEFAULT 0 CHECK (paused = 0 OR paused = 1),
  window_start INTEGER,
  window_count INTEGER NOT NULL DEFAULT 0 CHECK (window_count >= 0),
  updated_at INTEGER NOT NULL,
  CHECK ((rate_limit IS NULL) = (rate_interval_ms IS NULL))
);
`,
  },
  {
    version: 9,
    name: "unique keys",
    // A task's `unique` key, held while it is waiting (for its dependencies: the next migration), queued or
    // running (unique_for_ms NULL) or for unique_for_ms
    // from its creation. The unique index holds exactly the keys held now: a finished task leaves it by its
    // status alone, and a window key leaves it when a later enqueue of the same key finds the window over
    // and sets unique_released_at (a compare-and-set in the inserting transaction). Nullable columns
    // rewrite no row; tasks without a key are in no index of theirs.
    sql: `
ALTER TABLE task_queue ADD COLUMN unique_key TEXT;
ALTER TABLE task_queue ADD COLUMN unique_for_ms INTEGER CHECK (unique_for_ms > 0);
ALTER TABLE task_queue ADD COLUMN unique_released_at INTEGER ${timeCheck("unique_released_at")};
CREATE UNIQUE INDEX task_queue_unique_key ON task_queue (unique_key)
  WHERE unique_key IS NOT NULL AND unique_released_at IS NULL
    AND (unique_for_ms IS NOT NULL OR status = 'waiting' OR status = 'queued' OR status = 'running');
`,
  },
  {
    version: 10,
    name: "task dependencies",
    // A task may wait for others (`dependsOn`): the new status 'waiting', which the status CHECK must allow.
    // SQLite cannot change a CHECK, so task_queue is rebuilt, as migration 4 did, in the one migration
    // transaction (another process starting meanwhile waits for it, then finds it applied). Foreign keys are
    // on, and dropping task_queue would delete every log line through their cascade, so the logs are set
    // aside first, with their id sequence, and put back in a task_logs made anew. The fifo/lifo index a
    // worker makes (task_queue_queued_id) goes with the old table; the next such worker makes it again.
    // The dependencies get a table of their own, one row per dependency. A waiting task holds its
    // `while: "active"` unique key as a queued or running one does: the key's index takes it in.
    sql: `
CREATE TABLE task_logs_v10 AS SELECT id, task_id, at, level, message, details FROM task_logs;
CREATE TABLE task_logs_seq_v10 AS SELECT seq FROM sqlite_sequence WHERE name = 'task_logs';
DROP TABLE task_logs;
CREATE TABLE task_queue_v10 (
  id INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 9007199254740991),
  type TEXT NOT NULL CHECK (length(trim(type)) > 0),
  priority INTEGER NOT NULL DEFAULT 100,
  payload TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(payload)),
  status TEXT NOT NULL DEFAULT 'queued' CHECK (
    status = 'waiting' OR status = 'queued' OR status = 'running' OR status = 'completed' OR
    status = 'failed' OR status = 'cancelled'
  ),
  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
  error_message TEXT,
  idempotency_key TEXT,
  locked_by TEXT,
  timeout_ms INTEGER CHECK (timeout_ms > 0),
  run_after INTEGER NOT NULL DEFAULT ${PORTABLE_NOW_MS} ${timeCheck("run_after")},
  lease_until INTEGER ${timeCheck("lease_until")},
  lease_token TEXT,
  created_at INTEGER NOT NULL DEFAULT ${PORTABLE_NOW_MS} ${timeCheck("created_at")},
  updated_at INTEGER NOT NULL DEFAULT ${PORTABLE_NOW_MS} ${timeCheck("updated_at")},
  started_at INTEGER ${timeCheck("started_at")},
  finished_at INTEGER ${timeCheck("finished_at")},
  unconfirmed_start INTEGER NOT NULL DEFAULT 0 CHECK (unconfirmed_start = 0 OR unconfirmed_start = 1),
  retry_policy TEXT CHECK (retry_policy IS NULL OR json_valid(retry_policy)),
  result TEXT CHECK (result IS NULL OR json_valid(result)),
  progress TEXT CHECK (progress IS NULL OR json_valid(progress)),
  queue TEXT NOT NULL DEFAULT 'default' CHECK (length(queue) BETWEEN 1 AND 128),
  unique_key TEXT,
  unique_for_ms INTEGER CHECK (unique_for_ms > 0),
  unique_released_at INTEGER ${timeCheck("unique_released_at")},
  CHECK (status <> 'running' OR (lease_until IS NOT NULL AND lease_token IS NOT NULL))
) STRICT;
INSERT INTO task_queue_v10 (
  id, type, priority, payload, status, attempts, max_attempts, error_message, idempotency_key, locked_by,
  timeout_ms, run_after, lease_until, lease_token, created_at, updated_at, started_at, finished_at,
  unconfirmed_start, retry_policy, result, progress, queue, unique_key, unique_for_ms, unique_released_at
)
SELECT
  id, type, priority, payload, status, attempts, max_attempts, error_message, idempotency_key, locked_by,
  timeout_ms, run_after, lease_until, lease_token, created_at, updated_at, started_at, finished_at,
  unconfirmed_start, retry_policy, result, progress, queue, unique_key, unique_for_ms, unique_released_at
FROM task_queue;
DROP TABLE task_queue;
ALTER TABLE task_queue_v10 RENAME TO task_queue;
CREATE UNIQUE INDEX task_queue_idempotency_key ON task_queue (idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX task_queue_queued_priority ON task_queue (priority, run_after, id, queue) WHERE status = 'queued';
CREATE INDEX task_queue_running_lease ON task_queue (lease_until, queue) WHERE status = 'running';
CREATE INDEX task_queue_finished ON task_queue (finished_at) WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX task_queue_unique_key ON task_queue (unique_key)
  WHERE unique_key IS NOT NULL AND unique_released_at IS NULL
    AND (unique_for_ms IS NOT NULL OR status = 'waiting' OR status = 'queued' OR status = 'running');
CREATE TABLE task_logs (
  id INTEGER PRIMARY KEY AUTOINCREMENT CHECK (id BETWEEN 1 AND 9007199254740991),
  task_id INTEGER NOT NULL REFERENCES task_queue (id) ON DELETE CASCADE,
  at INTEGER NOT NULL ${timeCheck("at")},
  level TEXT NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
  message TEXT NOT NULL,
  details TEXT CHECK (details IS NULL OR json_valid(details))
) STRICT;
INSERT INTO sqlite_sequence (name, seq) SELECT 'task_logs', seq FROM task_logs_seq_v10;
INSERT INTO task_logs (id, task_id, at, level, message, details)
  SELECT id, task_id, at, level, message, details FROM task_logs_v10;
DROP TABLE task_logs_v10;
DROP TABLE task_logs_seq_v10;
CREATE INDEX task_logs_task ON task_logs (task_id, id);
CREATE TABLE task_dependencies (
  task_id INTEGER NOT NULL REFERENCES task_queue (id) ON DELETE CASCADE,
  depends_on INTEGER NOT NULL REFERENCES task_queue (id) ON DELETE CASCADE
) STRICT;
CREATE UNIQUE INDEX task_dependencies_pair ON task_dependencies (task_id, depends_on);
CREATE INDEX task_dependencies_depends_on ON task_dependencies (depends_on);
`,
  },
  {
    version: 11,
    name: "metrics counters",
    // The metrics' counters survive purges without a write per task (see store/metrics_sql.ts): reads fold
    // what finished before a watermark into metric_counts, and count the rest from the tasks, through the
    // finished_at index and the primary key. The counters start now: the watermarks start at this time and
    // at the largest id, so that no read ever counts a large table whole (on 1,000,000 tasks that took 20 s
    // under the write lock); the tasks already here are in the depths, not in the counters.
    // metric_counts has a rowid and a unique index, not a composite primary key, which Drizzle's schema says.
    sql: `
CREATE TABLE metric_counts (
  id INTEGER PRIMARY KEY,
  metric TEXT NOT NULL CHECK (length(metric) BETWEEN 1 AND 32),
  type TEXT NOT NULL,
  queue TEXT NOT NULL,
  bucket INTEGER NOT NULL,
  value INTEGER NOT NULL CHECK (value >= 0)
) STRICT;
CREATE UNIQUE INDEX metric_counts_key ON metric_counts (metric, type, queue, bucket);
CREATE TABLE metric_rollup (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  finished_until INTEGER NOT NULL,
  enqueued_until INTEGER NOT NULL,
  next_enqueued_until INTEGER NOT NULL,
  next_enqueued_at INTEGER NOT NULL
) STRICT;
INSERT INTO metric_rollup (id, finished_until, enqueued_until, next_enqueued_until, next_enqueued_at)
  SELECT 1, ${PORTABLE_NOW_MS}, coalesce(max(id), 0), coalesce(max(id), 0), -${TIME_LIMIT} FROM task_queue;
`,
  },
  {
    version: 12,
    name: "claim index led by the queue",
    // A claim by priority that names its queues, or that must pass paused or limited queues by, reads each
    // queue's best tasks from this index, rather than walk the priority index past every task of a held
    // queue's backlog ahead of a free one (50,000 of them made such a claim about 30 times slower).
    sql: `
CREATE INDEX task_queue_queued_queue ON task_queue (queue, priority, run_after, id) WHERE status = 'queued';
`,
  },
];
