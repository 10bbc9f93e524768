/**
 * A PostgreSQL store's URL and options, checked without the driver: the registry checks them when a
 * `QueueDatabase` is made, before the store (and the `postgres` driver with it) is loaded.
 *
 * @module
 */
import { wholeNumber } from "../../checks.ts";
import { redactLocation } from "../../db_url.ts";
import { DatabaseError, invalidType } from "../../errors.ts";

/** Options for a PostgreSQL store. */
export interface PostgresStoreOptions {
  /** Most connections the store opens at once. @default 10 */
  maxConnections?: number | undefined;
  /** How long opening a connection may take before it fails, in milliseconds. @default 10000 */
  connectTimeoutMs?: number | undefined;
  /**
   * How long one call may wait, for a free connection, a lock or the server's answer, before it fails with
   * a clear error (a write under way then may or may not have been applied). @default 30000
   */
  requestTimeoutMs?: number | undefined;
  /**
   * How long a call keeps trying again, with backoff, while the server cannot be reached or its connection
   * was lost (a restart, a failover, a network that dropped), before it fails with a clear error: the pool
   * reconnects meanwhile. 0 fails at once. A call that may have been applied already is tried again only
   * where doing it twice changes nothing (see `reconnect.ts`). @default 30000
   */
  reconnectTimeoutMs?: number | undefined;
}

/** The URL with its password (and its query, which may hold one) left out, for messages. */
export const redactUrl: (url: string) => string = redactLocation;

/** Checks a `postgres://` or `postgresql://` URL; throws a DatabaseError that never shows its password. */
function checkUrl(url: unknown): string {
  if (typeof url !== "string") throw invalidType(`The PostgreSQL URL must be a string, got ${typeof url}.`);
  const invalid = (why: string) =>
    new DatabaseError(`The database URL '${redactUrl(url)}' is invalid: ${why}`, {
      code: "DATABASE_URL_INVALID",
    });
  if (!/^postgres(ql)?:\/\//i.test(url)) {
    throw invalid("it does not start with postgres:// or postgresql://.");
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid("it is not a URL, like postgres://user@db.example.com:5432/queue.");
  }
  if (parsed.hostname === "") throw invalid("it names no host, like postgres://user@db.example.com/queue.");
  return url;
}

function milliseconds(name: string, value: number | undefined, fallback: number): number {
  return value === undefined ? fallback : wholeNumber(name, value, 1, 3_600_000);
}

/** The options, checked, with their defaults. */
export interface CheckedOptions {
  max: number;
  connectMs: number;
  requestTimeoutMs: number;
  reconnectTimeoutMs: number;
}

/**
 * Checks `url` and `options`.
 *
 * @throws {DatabaseError} with code `DATABASE_URL_INVALID` for a URL that is not one (without its password)
 * @throws {TypeError | RangeError} for an option that is not one
 */
export function checkOptions(url: string, options: PostgresStoreOptions = {}): CheckedOptions {
  if (typeof options !== "object" || options === null) throw invalidType("The options must be an object.");
  checkUrl(url);
  return {
    max: wholeNumber("maxConnections", options.maxConnections ?? 10, 1, 1000),
    connectMs: milliseconds("connectTimeoutMs", options.connectTimeoutMs, 10_000),
    requestTimeoutMs: milliseconds("requestTimeoutMs", options.requestTimeoutMs, 30_000),
    reconnectTimeoutMs: options.reconnectTimeoutMs === undefined
      ? 30_000
      : wholeNumber("reconnectTimeoutMs", options.reconnectTimeoutMs, 0, 3_600_000),
  };
}
