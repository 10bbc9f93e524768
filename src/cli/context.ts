/**
 * What every command shares: the options all of them take, opening (and migrating) the database, and
 * the registry of the handlers linked into this build.
 *
 * @module
 */
import { dirname } from "node:path";
import { DatabaseError, type HandlerDefinition, QueueDatabase, TaskHandlerRegistry } from "../../mod.ts";
import { describeNonDefinition, isMadeByDefineHandler } from "../handler.ts";
import { MAX_TIMER_MS } from "../timers.ts";
import { parseInteger } from "./args.ts";
import type { CliIo } from "./io.ts";

/** Options every command accepts. */
export const COMMON_OPTIONS = {
  db: { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

export const COMMON_HELP = `
Common options:
  --db <url>     Database: a file path, ':memory:', or libsql://, http(s)://, ws(s)://
                 (default: $PRISMQ_DB_URL, else ./prismq.db; auth token from $PRISMQ_DB_AUTH_TOKEN;
                 a server's answer is awaited $PRISMQ_DB_TIMEOUT_MS, default 30000 ms)
  --json         Print machine-readable JSON
  -h, --help     Show this help`;

export interface CommandContext {
  io: CliIo;
  /** The handlers linked into this build: the only ones the CLI registers. */
  handlers: readonly HandlerDefinition[];
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

/** Opens the database and applies any pending migrations, creating the file when needed. */
export async function openDatabase(flag: string | undefined, io: CliIo): Promise<QueueDatabase> {
  const location = databaseLocation(flag, io);
  const path = localPath(location);
  if (path !== undefined) {
    const folder = dirname(path);
    if (!io.exists(folder)) {
      throw new DatabaseError(
        `Cannot open database '${location}': the folder '${folder}' does not exist. Create it, or choose ` +
          `another location with --db.`,
      );
    }
  }
  const timeout = io.env.PRISMQ_DB_TIMEOUT_MS;
  const requestTimeoutMs = timeout === undefined || timeout === ""
    ? undefined
    : parseInteger("PRISMQ_DB_TIMEOUT_MS", timeout, 1, MAX_TIMER_MS);
  const db = new QueueDatabase(location, { authToken: io.env.PRISMQ_DB_AUTH_TOKEN, requestTimeoutMs });
  try {
    await db.initializeSchema();
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/** The file path of a local database location, or undefined for memory and servers. */
function localPath(location: string): string | undefined {
  if (location === ":memory:" || /^(libsql|https?|wss?):/i.test(location)) return undefined;
  if (/^file:/i.test(location)) {
    const rest = location.slice("file:".length).replace(/^\/\/(localhost)?(?=\/)/, "").split("?")[0];
    return rest === ":memory:" || rest === "" ? undefined : decodeURIComponent(rest);
  }
  return location;
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

/** A registry holding exactly the linked handlers. */
export function linkedRegistry(handlers: readonly HandlerDefinition[]): TaskHandlerRegistry {
  const registry = new TaskHandlerRegistry();
  for (const handler of handlers) registry.registerHandler(handler);
  return registry;
}
