/**
 * The stores the conformance suite runs on, one small factory ("harness") each: a fresh, migrated store and
 * the cleanup that removes it, what the store can do beyond the core contract, and why it cannot where it
 * cannot. This is the only file of the suite that knows how a store is built; a new store (or a new way of
 * opening one) is a new entry in {@link STORES}, and every conformance test then runs on it.
 *
 * @module
 */
import { join } from "node:path";
import { type Engine, LIBSQL, nodeSqliteEngineIfPresent } from "../../src/store/sqlite/engines.ts";
import { openSqliteStore } from "../../src/store/sqlite/open.ts";
import { openPostgresStore } from "../../src/store/postgres/mod.ts";
import type { Store } from "../../src/store/store.ts";
import { startLibsqlServer } from "../fixtures/libsql_http_server.ts";
import { makeTempDir } from "../_helpers.ts";
import { freshSchema, postgresUnavailable } from "../_postgres.ts";

/**
 * What some stores can do beyond the core contract. A test that needs one runs only on the stores that have
 * it, and is an explicit skip, with the store's reason, on the others.
 */
export type Capability =
  /** `backupTo` writes a copy to a local file. */
  | "backup"
  /** `watchCommits` calls its listener after commits. */
  | "commitNotifications"
  /** `exactCommitTopics`: `watchCommits` calls a listener only after commits of its topic. */
  | "exactCommitTopics"
  /** A second handle on the same database sees what the first committed (`reopen`). */
  | "secondHandle"
  /** `serverTime` reads the clock of the database's server. */
  | "serverTime"
  /** `leaderElect` and `leaderResign` elect one worker to lead the fleet's maintenance. */
  | "leader";

/**
 * The optional member of `Store` that a capability is, where it is one: a store has the capability exactly
 * when it has the member (capability_test.ts holds each harness to it).
 */
export const CAPABILITY_MEMBERS = {
  backup: "backupTo",
  commitNotifications: "watchCommits",
  serverTime: "serverTime",
  leader: "leaderElect",
} as const satisfies Partial<Record<Capability, keyof Store>>;

/** The time every test starts from, unless it says otherwise: a date far from the real clock on purpose. */
export const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);

/** One store opened for one test. */
export interface OpenedStore {
  readonly store: Store;
  /** A second, independent handle on the same database; closed with the first. */
  reopen(): Promise<Store>;
  /** The database's local file, when it has one: backups must refuse to overwrite it. */
  readonly filePath: string | null;
  /** A folder of this test's own, removed with the store, for files a test writes (backups). */
  readonly dir: string;
  /** A store on a copy `backupTo` wrote, closed with the first (stores with the `backup` capability). */
  openBackup(path: string): Promise<Store>;
  /**
   * PER-STORE HELPERS, the one place where the suite reaches below the contract: reads of what the
   * contract does not show (a task's lease token), so that tests can check it is set exactly while the task
   * runs. Each store implements them its own way (SQL here).
   */
  readonly inspect: {
    /** Every task's current lease token (null when it holds none), by id. */
    leaseTokens(): Promise<Map<number, string | null>>;
  };
  close(): Promise<void>;
}

export interface StoreHarness {
  /** How the store is named in test names: its engine and how it is reached. */
  readonly name: string;
  /** Why this store cannot run in this runtime; undefined when it can. */
  readonly unavailable: string | undefined;
  /** The capabilities this store lacks, each with the reason printed beside the tests it skips. */
  readonly lacks: Partial<Record<Capability, string>>;
  /**
   * A fresh store (migrated unless `migrate` is false, at `migrateAt`, T0 by default) that no other test
   * uses. When opening fails (the migration, say), what it had made is removed before it rejects.
   */
  open(options?: OpenOptions): Promise<OpenedStore>;
}

/**
 * The lease tokens of every task, read with SQL that SQLite and PostgreSQL both take: for every store,
 * whatever the engine or transport.
 */
async function sqlLeaseTokens(store: Store): Promise<Map<number, string | null>> {
  // SQL, on purpose and only here: a lease token is not part of a Task.
  const { rows } = await store.transaction((tx) => tx.execute("SELECT id, lease_token FROM task_queue"));
  return new Map(
    rows.map((row) => [Number(row.id), row.lease_token === null ? null : String(row.lease_token)]),
  );
}

export interface OpenOptions {
  migrate?: boolean;
  /** The time the migration is made at: T0 unless a test of the harness itself makes it fail. */
  migrateAt?: number;
}

/**
 * Builds an opened store with `build`, which registers each thing it makes with `made` (a schema, a
 * folder, a server, a store) as it makes it; if `build` fails, they are removed, newest first, before it
 * rejects: a migration that fails must not leave a schema behind.
 */
async function building(
  build: (made: (cleanup: () => unknown) => void) => Promise<OpenedStore>,
): Promise<OpenedStore> {
  const cleanups: (() => unknown)[] = [];
  try {
    return await build((cleanup) => cleanups.push(cleanup));
  } catch (error) {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch {
        // The first failure is the one to report.
      }
    }
    throw error;
  }
}

async function prepared(store: Store, { migrate = true, migrateAt = T0 }: OpenOptions): Promise<Store> {
  if (migrate) await store.migrate(migrateAt);
  return store;
}

/** A store on the file at `location` (or `:memory:`) through `engine`. */
/** The stores a harness opens besides its own (second handles, backups' copies), closed with it. */
function extraStores() {
  const opened: Store[] = [];
  return {
    open(open: () => Store): Promise<Store> {
      const store = open();
      opened.push(store);
      return Promise.resolve(store);
    },
    async close(): Promise<void> {
      for (const store of opened) await store.close();
    },
  };
}

function sqliteStore(location: string, engine: Engine): Store {
  return openSqliteStore(location, {}, engine).store;
}

const LOCAL_CLOCK = "an embedded database has no server: every process using it reads this machine's clock";
const NO_LEADER = "SQLite stores elect no leader: every worker reaps expired leases itself, as before";
const NO_NOTIFICATIONS = "a store without commit notifications has no topics to tell apart";

/** A file database on one SQLite engine, in a folder of its own. */
function fileHarness(name: string, engine: Engine | string): StoreHarness {
  return {
    name,
    unavailable: typeof engine === "string" ? engine : undefined,
    lacks: {
      serverTime: LOCAL_CLOCK,
      leader: NO_LEADER,
      exactCommitTopics: "the write-ahead log changes with every commit, whatever it changed",
    },
    open: (options = {}) =>
      building(async (made) => {
        if (typeof engine === "string") throw new Error(`${name} is unavailable: ${engine}`);
        const folder = makeTempDir("prismq-conformance-");
        made(folder.remove);
        const path = join(folder.dir, "queue.db");
        const opened = sqliteStore(path, engine);
        made(() => opened.close());
        const store = await prepared(opened, options);
        const others = extraStores();
        return {
          store,
          filePath: path,
          dir: folder.dir,
          reopen: () => others.open(() => sqliteStore(path, engine)),
          openBackup: (copy) => others.open(() => sqliteStore(copy, engine)),
          inspect: { leaseTokens: () => sqlLeaseTokens(store) },
          async close() {
            await others.close();
            await store.close();
            folder.remove();
          },
        };
      }),
  };
}

/** An in-memory database: no file, no write-ahead log, and a database of its own per connection. */
function memoryHarness(engine: Engine): StoreHarness {
  return {
    name: `:memory: on ${engine.name}`,
    unavailable: undefined,
    lacks: {
      commitNotifications: "an in-memory database has no write-ahead log to watch, so no commit is signalled",
      exactCommitTopics: NO_NOTIFICATIONS,
      secondHandle: "every connection to :memory: opens a database of its own",
      serverTime: LOCAL_CLOCK,
      leader: NO_LEADER,
    },
    open: (options = {}) =>
      building(async (made) => {
        const folder = makeTempDir("prismq-conformance-");
        made(folder.remove);
        const opened = sqliteStore(":memory:", engine);
        made(() => opened.close());
        const store = await prepared(opened, options);
        const others = extraStores();
        return {
          store,
          filePath: null,
          dir: folder.dir,
          reopen: () => Promise.reject(new Error("an in-memory database cannot be opened twice")),
          openBackup: (copy) => others.open(() => sqliteStore(copy, engine)),
          inspect: { leaseTokens: () => sqlLeaseTokens(store) },
          async close() {
            await others.close();
            await store.close();
            folder.remove();
          },
        };
      }),
  };
}

/**
 * A libSQL server reached over HTTP by `@libsql/client`. No real server (sqld) can run on these machines,
 * so this is the loopback stand-in of tests/fixtures/libsql_http_server.ts, on a libSQL file: it proves the
 * remote path of the store (the client, its transactions and batches, values as they come over the wire),
 * not sqld itself.
 */
function remoteHarness(): StoreHarness {
  return {
    name: "libSQL server over HTTP (stand-in)",
    unavailable: undefined,
    lacks: {
      backup: "a libSQL server holds no file on this machine to copy, so the store has no backupTo",
      commitNotifications: "a libSQL server sends no commit signal; its callers poll",
      exactCommitTopics: NO_NOTIFICATIONS,
      leader: NO_LEADER,
    },
    open: (options = {}) =>
      building(async (made) => {
        const folder = makeTempDir("prismq-conformance-");
        made(folder.remove);
        const server = await startLibsqlServer(join(folder.dir, "server.db"));
        made(() => server.close());
        const others = extraStores();
        const connect = () => openSqliteStore(server.url).store;
        const opened = connect();
        made(() => opened.close());
        const store = await prepared(opened, options);
        return {
          store,
          filePath: null,
          dir: folder.dir,
          reopen: () => others.open(connect),
          openBackup: () => Promise.reject(new Error("a libSQL server writes no backups")),
          inspect: { leaseTokens: () => sqlLeaseTokens(store) },
          async close() {
            await others.close();
            await store.close();
            await server.close();
            folder.remove();
          },
        };
      }),
  };
}

/**
 * A PostgreSQL server: the test run's (or this process's own, started on first use), a fresh schema on it
 * per test (its URL sets `search_path`), dropped with the store.
 */
function postgresHarness(): StoreHarness {
  return {
    name: "PostgreSQL server",
    unavailable: postgresUnavailable(),
    lacks: {
      backup:
        "a PostgreSQL server's backups are made with its own tools (pg_dump), so the store has no backupTo",
    },
    open: (options = {}) =>
      building(async (made) => {
        const folder = makeTempDir("prismq-conformance-");
        made(folder.remove);
        const database = await freshSchema();
        made(database.drop);
        const others = extraStores();
        const opened = openPostgresStore(database.url, { maxConnections: 4 });
        made(() => opened.close());
        const store = await prepared(opened, options);
        return {
          store,
          filePath: null,
          dir: folder.dir,
          reopen: () => others.open(() => openPostgresStore(database.url, { maxConnections: 4 })),
          openBackup: () => Promise.reject(new Error("a PostgreSQL server writes no backups here")),
          inspect: { leaseTokens: () => sqlLeaseTokens(store) },
          async close() {
            await others.close();
            await store.close();
            await database.drop();
            folder.remove();
          },
        };
      }),
  };
}

const nodeSqlite = nodeSqliteEngineIfPresent();

/** Every store, in the order they are reported. */
export const STORES: readonly StoreHarness[] = [
  fileHarness(
    "file on node:sqlite",
    nodeSqlite ?? "this runtime has no node:sqlite (Node 20; PrismQ runs files on libsql there)",
  ),
  fileHarness("file on libsql", LIBSQL),
  memoryHarness(nodeSqlite ?? LIBSQL),
  remoteHarness(),
  postgresHarness(),
];
