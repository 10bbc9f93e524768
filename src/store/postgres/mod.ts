/**
 * The PostgreSQL store: {@link openPostgresStore} opens one by URL.
 *
 * @module
 */
export { openPostgresStore, PostgresStore } from "./store.ts";
export type { PostgresStoreOptions } from "./connection.ts";
