/**
 * Numbered schema migrations, compiled into the code so that a single binary never reads SQL from disk.
 * Append new ones; never edit one that has shipped.
 *
 * @module
 */

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const NOW_MS = "(CAST(unixepoch('subsec') * 1000 AS INTEGER))";

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
    // due time too (see ORDER_INDEX in store.ts).
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
];
