/**
 * Where the benchmark's databases live, behind one interface the scenarios use: fresh SQLite files in the
 * bench's folder, or fresh schemas on a PostgreSQL server (`postgres.ts`). A scenario asks for a new
 * location, opens it with PrismQ (`QueueDatabase` takes either), and afterwards reads what the workers did
 * and removes it.
 *
 * @module
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import Database from "libsql";

/** What a drain left in the database. */
export interface DrainOutcome {
  tasks: number;
  completed: number;
  /** Tasks in any other status. */
  lost: number;
  /**
   * Extra executions: each claim counts an attempt, so a task run twice has attempts ≥ 2. A task never
   * claimed (attempts 0) counts as lost, not as minus one duplicate.
   */
  duplicates: number;
  /** From the first claim of a completed task to the last completion, in ms. */
  windowMs: number;
}

/** The database the report names: its engine, where it ran, and the settings in force. */
export interface DatabaseInfo {
  kind: "sqlite" | "postgres";
  /** "SQLite files in …", or the server's URL without its password. */
  location: string;
  /** Settings that decide its speed, by name (PostgreSQL's `SHOW` values, or SQLite's pragmas). */
  settings: Record<string, string>;
}

export interface BenchDatabases {
  readonly kind: "sqlite" | "postgres";
  /** The location of a new, empty database, unique per call; `name` says which scenario it is for. */
  create(name: string): Promise<string>;
  /** Readies a database just filled for a drain, before its clock starts (PostgreSQL: ANALYZE). */
  settle(location: string): Promise<void>;
  /** What a drain left in the database. */
  outcome(location: string): Promise<DrainOutcome>;
  /** Tasks in the database, in any status. */
  count(location: string): Promise<number>;
  /** Deletes the database. */
  remove(location: string): Promise<void>;
  describe(): Promise<DatabaseInfo>;
  /** Ends whatever the databases hold open (a server the bench started is stopped). */
  close(): Promise<void>;
}

/** What a drain left, in SQL that SQLite and PostgreSQL both take. */
export const OUTCOME_SQL = {
  window: "SELECT min(started_at) AS first, max(finished_at) AS last, count(*) AS completed " +
    "FROM task_queue WHERE status = 'completed'",
  totals: "SELECT count(*) AS tasks, " +
    "coalesce(sum(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END), 0) AS duplicates, " +
    "coalesce(sum(CASE WHEN status <> 'completed' THEN 1 ELSE 0 END), 0) AS lost FROM task_queue",
};

/** A drain's figures from the rows of {@link OUTCOME_SQL}'s two queries. */
export function drainOutcomeOf(
  window: { first: unknown; last: unknown; completed: unknown },
  totals: { tasks: unknown; duplicates: unknown; lost: unknown },
): DrainOutcome {
  return {
    tasks: Number(totals.tasks),
    completed: Number(window.completed),
    lost: Number(totals.lost),
    duplicates: Number(totals.duplicates),
    windowMs: window.first === null ? 0 : Number(window.last) - Number(window.first),
  };
}

/** Deletes a SQLite database and its WAL and shared-memory files. */
export function removeDb(path: string): void {
  for (const suffix of ["", "-wal", "-shm"]) rmSync(path + suffix, { force: true });
}

/** Tasks in a SQLite file, in any status. */
export function countTasks(path: string): number {
  const db = new Database(path);
  try {
    return Number((db.prepare("SELECT count(*) AS n FROM task_queue").get() as { n: number }).n);
  } finally {
    db.close();
  }
}

/** Fresh SQLite files in `dir` (the engine's own settings: WAL, synchronous=NORMAL). */
export function sqliteFiles(dir: string): BenchDatabases {
  let files = 0;
  return {
    kind: "sqlite",
    create: (name) => Promise.resolve(join(dir, `${name}-${++files}.db`)),
    settle: () => Promise.resolve(),
    outcome(path) {
      const db = new Database(path);
      try {
        return Promise.resolve(drainOutcomeOf(
          db.prepare(OUTCOME_SQL.window).get() as { first: number | null; last: number; completed: number },
          db.prepare(OUTCOME_SQL.totals).get() as { tasks: number; duplicates: number; lost: number },
        ));
      } finally {
        db.close();
      }
    },
    count: (path) => Promise.resolve(countTasks(path)),
    remove: (path) => Promise.resolve(removeDb(path)),
    describe: () =>
      Promise.resolve({
        kind: "sqlite",
        location: `SQLite files in ${dir}`,
        settings: { journal_mode: "wal", synchronous: "normal" },
      }),
    close: () => Promise.resolve(),
  };
}
