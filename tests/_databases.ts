/**
 * The databases that tests of real processes (workers, the CLI, the binary) run on: a SQLite file, and a
 * real PostgreSQL server (a database of its own per test, on 127.0.0.1). A test written once over
 * {@link PROCESS_DATABASES} holds every database to the same assertions.
 *
 * `npm test` runs each test file twice, the second time with `PRISMQ_SQLITE_ENGINE=libsql`; no SQLite
 * engine takes part on PostgreSQL, so its tests run in the first pass only and are skipped in the second,
 * saying so.
 *
 * @module
 */
import { join } from "node:path";
import process from "node:process";
import { freshDatabase, postgresUnavailable } from "./_postgres.ts";

/** One kind of database for a test that starts processes. */
export interface ProcessDatabase {
  /** For test names: `a file`, `PostgreSQL`. */
  readonly name: string;
  readonly kind: "file" | "postgres";
  /** Why its tests are skipped in this run, or undefined when they run. */
  readonly skip: string | undefined;
  /**
   * A new, empty database for one test: the location processes open (a path, or a URL with no password:
   * the test server trusts loopback), and the function that removes it.
   *
   * @param dir the test's own temporary folder, where a file database goes
   */
  create(dir: string): Promise<{ location: string; drop: () => Promise<void> }>;
}

/** Why a test on PostgreSQL does not run in this pass, or undefined when it does. */
export function postgresSkip(): string | undefined {
  if (process.env.PRISMQ_SQLITE_ENGINE === "libsql") {
    return "PostgreSQL runs in the node:sqlite pass; no SQLite engine takes part";
  }
  return postgresUnavailable();
}

export const FILE_DATABASE: ProcessDatabase = {
  name: "a file",
  kind: "file",
  skip: undefined,
  create: (dir) => Promise.resolve({ location: join(dir, "queue.db"), drop: () => Promise.resolve() }),
};

export const POSTGRES_DATABASE: ProcessDatabase = {
  name: "PostgreSQL",
  kind: "postgres",
  skip: postgresSkip(),
  async create() {
    const { url, drop } = await freshDatabase();
    return { location: url, drop };
  },
};

/** Every database the process tests run on. */
export const PROCESS_DATABASES: readonly ProcessDatabase[] = [FILE_DATABASE, POSTGRES_DATABASE];
