/**
 * What every command shares: the options all of them take, opening (and migrating) the database for the
 * span of a command's work, and the registry of the handlers linked into this build.
 *
 * @module
 */
import { dirname } from "node:path";
import {
  DatabaseError,
  type HandlerDefinition,
  Queue,
  QueueDatabase,
  type QueueOptions,
  type ScheduleDefinition,
  TaskHandlerRegistry,
} from "../../mod.ts";
import { parseDatabaseLocation, redactLocation, schemeOf } from "../db_url.ts";
import { describeNonDefinition, isMadeByDefineHandler } from "../handler.ts";
import { MAX_TIMER_MS } from "../timers.ts";
import { parseInteger } from "./args.ts";
import type { CliIo } from "./io.ts";
import { storeKindFor } from "../store/registry.ts";
import { SQLITE } from "../store/sqlite/open.ts";

/** Options every command accepts. */
export const COMMON_OPTIONS = {
  db: { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

export const COMMON_HELP = `
Common options:
  --db <url>     Database: a file path, ':memory:', libsql://, http(s)://, ws(s)://, or
                 postgres://user:password@host:5432/db (default: $PRISMQ_DB_URL, else ./prismq.db;
                 a libSQL auth token from $PRISMQ_DB_AUTH_TOKEN, a PostgreSQL password from the URL
                 or $PGPASSWORD; a server's answer is awaited $PRISMQ_DB_TIMEOUT_MS, default 30000 ms;
                 a PostgreSQL server that went away is waited for $PRISMQ_DB_RECONNECT_TIMEOUT_MS,
                 default 30000 ms)
  --json         Print machine-readable JSON
  -h, --help     Show this help`;

export interface CommandContext {
  io: CliIo;
  /** The handlers linked into this build: the only ones the CLI registers. */
  handlers: readonly HandlerDefinition[];
  /** The schedules linked into this build, declared beside the handlers. */
  schedules: readonly ScheduleDefinition[];
}

export interface Command {
  name: string;
  summary: string;
  help: string;
  run(argv: string[], context: CommandContext): Promise<number>;
}

/** The database location from `--db`, else `PRISMQ_DB_URL`, else `./prismq.db`. */
export function databaseLocation(flag: string | undefined, io: CliIo): string {
  return flag ?? io.env.PRISMQ_DB_URL ?? "./prismq.db";
}

/** The database location as output may show it: a server URL without its password (see redactLocation). */
export function shownLocation(flag: string | undefined, io: CliIo): string {
  return redactLocation(databaseLocation(flag, io));
}

/** The `--db` option, as every command's parsed options carry it. */
export interface DatabaseFlag {
  db?: string | undefined;
}

/**
 * Opens the database of `--db` (creating and migrating it when needed), runs `work` on it, and closes it
 * however `work` ends. What goes wrong propagates to `main()`, which turns it into one line and an exit code.
 */
export async function withDatabase<T>(
  io: CliIo,
  values: DatabaseFlag,
  work: (db: QueueDatabase) => Promise<T>,
): Promise<T> {
  const db = await openDatabase(values.db, io);
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

/** {@link withDatabase}, with a {@link Queue} on the database (made with `options`) for `work`. */
export function withQueue<T>(
  io: CliIo,
  values: DatabaseFlag,
  work: (queue: Queue, db: QueueDatabase) => Promise<T>,
  options: QueueOptions = {},
): Promise<T> {
  return withDatabase(io, values, (db) => work(new Queue(db, options), db));
}

/** Opens the database and applies any pending migrations, creating the file when needed. */
async function openDatabase(flag: string | undefined, io: CliIo): Promise<QueueDatabase> {
  const location = databaseLocation(flag, io);
  const timeout = io.env.PRISMQ_DB_TIMEOUT_MS;
  const requestTimeoutMs = timeout === undefined || timeout === ""
    ? undefined
    : parseInteger("PRISMQ_DB_TIMEOUT_MS", timeout, 1, MAX_TIMER_MS);
  const reconnect = io.env.PRISMQ_DB_RECONNECT_TIMEOUT_MS;
  const reconnectTimeoutMs = reconnect === undefined || reconnect === ""
    ? undefined
    : parseInteger("PRISMQ_DB_RECONNECT_TIMEOUT_MS", reconnect, 0, 3_600_000);
  // PRISMQ_DB_AUTH_TOKEN is a libSQL server's token: a PostgreSQL URL carries its own password; and only a
  // PostgreSQL server is reconnected to. Refuses a location no store opens, or one its store cannot read;
  // opens nothing yet.
  const sqlite = storeKindFor(location) === SQLITE;
  const db = new QueueDatabase(location, {
    authToken: sqlite ? io.env.PRISMQ_DB_AUTH_TOKEN : undefined,
    requestTimeoutMs,
    reconnectTimeoutMs: sqlite ? undefined : reconnectTimeoutMs,
  });
  try {
    assertFolderExists(location, io);
    await db.initializeSchema();
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}

/** Refuses a database file whose folder is missing, in words that point at --db. */
function assertFolderExists(location: string, io: CliIo): void {
  if ((schemeOf(location) ?? "file") !== "file") return;
  const parsed = parseDatabaseLocation(location);
  if (parsed.kind !== "file") return;
  const folder = dirname(parsed.path);
  if (!io.exists(folder)) {
    throw new DatabaseError(
      `Cannot open database '${location}': the folder '${folder}' does not exist. Create it, or choose ` +
        `another location with --db.`,
    );
  }
}

/**
 * Checks, at start, the list of handlers this build links: each one made by `defineHandler`, no two of one
 * type. The manifest generator refuses such handler files, so this fails only for a list that did not come
 * from it (edited by hand, say); it fails with a sentence naming the entry rather than a crash later.
 *
 * @throws {Error} naming the entry at fault
 */
export function assertLinkedHandlers(handlers: readonly unknown[]): void {
  const broken = "The handlers linked into this build are broken:";
  const fix = "Build again with 'npm run build', whose manifest step names the handler file at fault.";
  const seen = new Map<string, number>();
  handlers.forEach((handler, index) => {
    if (!isMadeByDefineHandler(handler)) {
      throw new Error(
        `${broken} handler ${index + 1} of ${handlers.length} in handlers/mod.ts is ` +
          `${describeNonDefinition(handler)}, not a handler definition made by defineHandler. ${fix}`,
      );
    }
    const first = seen.get(handler.type);
    if (first !== undefined) {
      throw new Error(
        `${broken} handlers ${first + 1} and ${index + 1} in handlers/mod.ts both have type ` +
          `'${handler.type}'. ${fix}`,
      );
    }
    seen.set(handler.type, index);
  });
}

/**
 * A registry holding exactly the linked handlers and schedules.
 *
 * @throws {TypeError} for a schedule of a type no linked handler has, or two schedules of one name (the
 *   manifest generator refuses both, so only a list edited by hand gets here)
 */
export function linkedRegistry(
  handlers: readonly HandlerDefinition[],
  schedules: readonly ScheduleDefinition[] = [],
): TaskHandlerRegistry {
  const registry = new TaskHandlerRegistry();
  for (const handler of handlers) registry.registerHandler(handler);
  for (const schedule of schedules) registry.registerSchedule(schedule);
  return registry;
}
