/**
 * The SQLite store as the store registry (`../registry.ts`) sees it: the schemes it opens (a file, by path or
 * `file:` URL, `:memory:`, and a libSQL server), and how it is opened.
 *
 * @module
 */
import { withoutForeignOptions } from "../foreign_options.ts";
import type { StoreKind } from "../registry.ts";
import { Connection, type ConnectionOptions } from "./connection.ts";
import type { Engine } from "./engines.ts";
import { MIGRATIONS } from "./migrations.ts";
import { SqliteStore } from "./store.ts";

/**
 * A SQLite store on `location`: a new connection, or for a file this process has open, that one (see
 * `Connection.acquire`).
 *
 * @param engine the SQLite engine for a file, where the caller must choose (the conformance suite runs every
 *   engine in one process) @default chooseEngine(), from `PRISMQ_SQLITE_ENGINE`
 */
export function openSqliteStore(
  location: string,
  options: ConnectionOptions = {},
  engine?: Engine,
): { store: SqliteStore; url: string } {
  const connection = Connection.acquire(location, options, engine);
  return { store: new SqliteStore(connection), url: connection.url };
}

/** Options of a PostgreSQL server, which a SQLite database has no use for, and what it has instead. */
const POSTGRES_ONLY: Record<string, string> = {
  maxConnections: "a SQLite file has one connection per process, shared by its handles",
  connectTimeoutMs:
    "a SQLite file opens at once, and a libSQL server's calls are bounded by requestTimeoutMs",
  reconnectTimeoutMs: "a SQLite file has no server to reconnect to, and a libSQL server's calls are " +
    "bounded by requestTimeoutMs",
};

export const SQLITE: StoreKind = {
  name: "SQLite",
  schemes: ["file", "libsql", "http", "https", "ws", "wss"],
  schemaVersion: MIGRATIONS[MIGRATIONS.length - 1]!.version,
  // Connection.acquire checks the options that are its own.
  open: (location, options) =>
    openSqliteStore(
      location,
      withoutForeignOptions(options, POSTGRES_ONLY, "PostgreSQL servers", location) as ConnectionOptions,
    ),
};
