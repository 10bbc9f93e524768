/**
 * The PostgreSQL store as the store registry (`../registry.ts`) sees it: `postgres:` and `postgresql:`
 * URLs, and the options it takes from those given to `QueueDatabase`. It loads neither the store nor the
 * `postgres` driver: see `lazy_store.ts`.
 *
 * @module
 */
import { withoutForeignOptions } from "../foreign_options.ts";
import type { StoreKind } from "../registry.ts";
import { LazyPostgresStore } from "./lazy_store.ts";
import { MIGRATIONS } from "./migrations.ts";
import { checkOptions, type PostgresStoreOptions, redactUrl } from "./options.ts";

/** Options of a SQLite database, which a PostgreSQL server has no use for, and what to use instead. */
const SQLITE_ONLY: Record<string, string> = {
  authToken: "a PostgreSQL URL carries its password (or PGPASSWORD gives it)",
  busyTimeoutMs: "a PostgreSQL server's waits for locks are bounded by requestTimeoutMs",
  synchronous: "a PostgreSQL server's durability is its own setting (synchronous_commit)",
};

export const POSTGRES: StoreKind = {
  name: "PostgreSQL",
  schemes: ["postgres", "postgresql"],
  schemaVersion: MIGRATIONS[MIGRATIONS.length - 1]!.version,
  open(location, options) {
    const own = withoutForeignOptions(options, SQLITE_ONLY, "SQLite databases", location);
    // Checked now, so that a mistake is reported at once; the store itself loads on its first call.
    checkOptions(location, own as PostgresStoreOptions);
    return { store: new LazyPostgresStore(location, own as PostgresStoreOptions), url: redactUrl(location) };
  },
};
