/**
 * The pool of connections one PostgreSQL store uses (the `postgres` driver, pure JavaScript), the settings
 * that bound every wait on it, and running Drizzle SQL on it: alone, as one batch (one round trip, one
 * transaction), or inside an interactive transaction. Every low-level failure becomes a `DatabaseError`
 * that names the server without its password.
 *
 * @module
 */
import type { SQL } from "drizzle-orm";
import postgres from "postgres";
import { DatabaseError } from "../../errors.ts";
import { checkOptions, type PostgresStoreOptions, redactUrl } from "./options.ts";
import { compile, type Statement } from "./sql.ts";

export { type PostgresStoreOptions, redactUrl } from "./options.ts";

/**
 * What a failure says of the server and of the call: `unreached`, the call never reached the server (no
 * connection could be opened or given to it), so it did nothing; `lost`, the connection went (or went
 * silent) while the call was under way, so it may or may not have been applied; `undefined`, the server
 * answered (an error of the call itself, or a deadline it enforced), or the pool was closed.
 */
export type Failure = "unreached" | "lost" | undefined;

/** Codes of failures before a call was sent: the driver's, the operating system's, and the server's. */
const UNREACHED = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "CONNECT_TIMEOUT",
  "QUEUE_TIMEOUT",
  "57P03", // cannot_connect_now: starting up, shutting down, in recovery
  "53300", // too_many_connections
  "08001", // sqlclient_unable_to_establish_sqlconnection
  "08004", // sqlserver_rejected_establishment_of_sqlconnection
]);

/** Codes of failures while a call was under way. */
/**
 * The server rolled the whole transaction back to break a deadlock (40P01) or a serialization conflict
 * (40001): nothing of it was applied, so it is made again as a call that never reached the server is. Two
 * batches that lock the same tasks in different orders can meet so (a heartbeat and an outcome).
 */
const ROLLED_BACK = new Set(["40P01", "40001"]);

const LOST = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CANCEL_UNANSWERED",
  "QUERY_TIMEOUT",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "57P01", // admin_shutdown: the server is stopping (a restart), or the session was terminated
  "57P02", // crash_shutdown: another session crashed the server
  "08000", // connection_exception
  "08003", // connection_does_not_exist
  "08006", // connection_failure
]);

/** The driver's handle: the pool, or one transaction on it. */
export type Sql = postgres.Sql<Record<string, never>>;
export type TransactionSql = postgres.TransactionSql<Record<string, never>>;

/** Every `bigint` (oid 20), counts included, read as a JavaScript number: PrismQ stores safe integers only. */
const NUMBER_BIGINT = {
  to: 20,
  from: [20],
  serialize: (value: number) => String(value),
  parse: (text: string) => Number(text),
  // Read from the row's bytes, without making a string first: a claim reads thousands of numbers.
  decode: decimalInteger,
};

/**
 * A decimal integer's ASCII digits, from `start` to `end` of the driver's buffer, as a number: exact for
 * safe integers, since every partial sum is (the digit is added as a number, not its code then less 48).
 */
function decimalInteger(bytes: Uint8Array, start: number, end: number): number {
  const negative = bytes[start] === 45;
  let n = 0;
  for (let i = negative ? start + 1 : start; i < end; i++) n = n * 10 + (bytes[i]! - 48);
  return negative ? -n : n;
}

/**
 * Every statement of the store is prepared (named, parsed and described once per connection): their texts
 * are a fixed set, every value a parameter. The driver's `unsafe` otherwise describes each query before it
 * runs it, a second round trip per call (0.1–0.3 ms here, more than a claim's own work). Each is still
 * planned for its values (`plan_cache_mode`, below).
 */
const PREPARED = { prepare: true } as const;

/** The deadlines of one call, in milliseconds, all derived from `requestTimeoutMs`; see {@link deadlines}. */
export interface Deadlines {
  /** The server's, as `statement_timeout` and `lock_timeout`: a call it cancels did nothing. */
  server: number;
  /** The driver's wait for a free connection (`queue_timeout`): a call that waited so long was not sent. */
  queue: number;
  /** The driver's own (`query_timeout`), from when the call is queued: past it, the outcome is unknown. */
  client: number;
}

/**
 * The rule that keeps a timeout's outcome known: the server bounds each call by `requestTimeoutMs` and,
 * cancelling it, says so (57014, or 55P03 for a lock): nothing of it was applied. The driver's own deadline
 * runs from when the call is queued, so it must outlast the wait for a connection plus the server's
 * deadline, plus a margin for the server's answer to arrive on a loaded machine (a tenth, at least a
 * second). It then fires only when the server has gone silent, and only then is the outcome unknown. Were
 * the two equal, the driver would win the race nearly always (its clock starts first) and report a call
 * the server would have cancelled cleanly as one that may or may not have been applied. The server's bound
 * is per statement and the driver's per call, so the rule is exact for a call of one statement; a batch of
 * several can outlast the driver's deadline while each of its statements is within the server's (the
 * worker's writes, made again, are recognised: `queries/recorded.ts`).
 */
export function deadlines(requestTimeoutMs: number): Deadlines {
  const margin = Math.max(1000, Math.ceil(requestTimeoutMs / 10));
  return { server: requestTimeoutMs, queue: requestTimeoutMs, client: 2 * requestTimeoutMs + margin };
}

/** One store's pool, and the URL it names in messages. */
export class PgConnection {
  readonly sql: Sql;
  /** The URL without its password. */
  readonly location: string;
  readonly requestTimeoutMs: number;
  readonly reconnectTimeoutMs: number;
  /** The URL and the driver's options, for a connection of its own ({@link unbounded}). */
  readonly #url: string;
  readonly #options: postgres.Options<Record<string, postgres.PostgresType>>;
  /** Whether {@link end} was called: every call after it fails with {@link closedError}. */
  #ended = false;

  constructor(url: string, options: PostgresStoreOptions = {}) {
    const { max, connectMs, requestTimeoutMs, reconnectTimeoutMs } = checkOptions(url, options);
    this.requestTimeoutMs = requestTimeoutMs;
    this.reconnectTimeoutMs = reconnectTimeoutMs;
    this.location = redactUrl(url);
    this.#url = url;
    const limits = deadlines(this.requestTimeoutMs);
    this.#options = {
      max,
      connect_timeout: connectMs / 1000,
      // Waits the client bounds: for a free connection, and for a server that stops answering...
      queue_timeout: limits.queue / 1000,
      query_timeout: limits.client / 1000,
      // A query that times out is cancelled; when the cancel goes unanswered too (a server or network gone
      // silent), the connection is closed after this long, and the call fails.
      cancel_timeout: Math.min(limits.server / 1000, 5),
      idle_timeout: 60,
      // Connections lost are opened again (and a LISTEN made again) after 50 ms, growing to a second, with
      // jitter: the driver's own pauses grow to 20 s, which would leave workers idle long after a restart.
      backoff: (retries: number) => Math.min(1, 0.05 * 2 ** retries) * (0.5 + Math.random() / 2),
      // ...and those the server bounds, where the outcome is known.
      connection: {
        application_name: "prismq",
        lock_timeout: limits.server,
        statement_timeout: limits.server,
        idle_in_transaction_session_timeout: this.requestTimeoutMs,
        // Prepared statements keep their custom plans: a generic plan cannot see how many tasks an array
        // holds, and joined 512 outcomes to their tasks by a nested loop (40 ms instead of 3).
        plan_cache_mode: "force_custom_plan",
      },
      onnotice: false,
      types: { bigint: NUMBER_BIGINT },
      // An idle pool does not keep the process alive.
      unref_sockets: true,
    };
    this.sql = postgres(url, this.#options) as unknown as Sql;
  }

  /**
   * Runs `fn` in a transaction on a connection of its own that the driver sets no deadline on (the pool's
   * would cancel any statement after `requestTimeoutMs`), closed after: for migrations, whose statements may
   * rightly run longer, and which bound their own waits (see `migrate.ts`). Reaching the server is bounded
   * as for any call (a server that never answers fails after `requestTimeoutMs`); one that goes silent
   * once the migration is under way is noticed by TCP keepalive.
   */
  async unbounded<T>(fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
    const sql = postgres(this.#url, { ...this.#options, max: 1, query_timeout: 0 });
    try {
      return await sql.begin((tx) => fn(tx as unknown as TransactionSql)) as T;
    } finally {
      await sql.end({ timeout: 5 });
    }
  }

  /** Runs `query` and returns its rows as objects. */
  async rows<T = Record<string, unknown>>(
    query: SQL | Statement,
    on: Sql | TransactionSql = this.sql,
  ): Promise<T[]> {
    const { text, params } = "text" in query ? query : compile(query);
    try {
      // A plain array: the driver's result array carries more than its rows.
      return [
        ...await on.unsafe(text, params as postgres.ParameterOrJSON<never>[], PREPARED),
      ] as unknown as T[];
    } catch (error) {
      throw this.error(error);
    }
  }

  /** Runs `query` and returns its rows as arrays of values, in the order of its columns. */
  async values(query: SQL | Statement, on: Sql | TransactionSql = this.sql): Promise<unknown[][]> {
    const { text, params } = "text" in query ? query : compile(query);
    try {
      return await on.unsafe(text, params as postgres.ParameterOrJSON<never>[], PREPARED)
        .values() as unknown[][];
    } catch (error) {
      throw this.error(error);
    }
  }

  /** Runs the queries in one round trip as one transaction: all commit, or none; each one's rows. */
  async batch(queries: readonly (SQL | Statement)[]): Promise<Record<string, unknown>[][]> {
    if (queries.length === 1) return [await this.rows(queries[0]!)];
    const pending = queries.map((query) => {
      const { text, params } = "text" in query ? query : compile(query);
      return this.sql.unsafe(text, params as postgres.ParameterOrJSON<never>[], PREPARED);
    });
    try {
      return (await this.sql.batch(pending)).map((rows) => [...rows]) as unknown as Record<
        string,
        unknown
      >[][];
    } catch (error) {
      throw this.error(error);
    }
  }

  /** Runs `fn` in a transaction: committed when it resolves, rolled back when it throws. */
  async begin<T>(fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
    // What `fn` throws is the caller's own and passes as it is; only the driver's failures are rewritten.
    let thrown: { error: unknown } | undefined;
    try {
      return await this.sql.begin(async (tx) => {
        try {
          return await fn(tx as unknown as TransactionSql);
        } catch (error) {
          thrown = { error };
          throw error;
        }
      }) as T;
    } catch (error) {
      throw thrown && thrown.error === error ? error : this.error(error);
    }
  }

  /** Closes every connection, letting queries under way finish first, for at most five seconds. */
  async end(): Promise<void> {
    this.#ended = true;
    await this.sql.end({ timeout: 5 });
  }

  /** The error of a call on a closed store: the same words as a SQLite store's. */
  closedError(): DatabaseError {
    return new DatabaseError(
      `The database '${this.location}' is closed: its QueueDatabase was closed. Open a new one to go on ` +
        `using it.`,
    );
  }

  /** What `error` (a failure of one of this connection's calls) says of the server; see {@link Failure}. */
  failureOf(error: unknown): Failure {
    const cause = error instanceof DatabaseError ? error.cause : error;
    const code = (cause as { code?: unknown } | null)?.code;
    if (typeof code !== "string") return undefined;
    // The server cancelled the call when the driver asked it to: an answer, and nothing was applied.
    if (serverCancelled(cause)) return undefined;
    if (UNREACHED.has(code) || ROLLED_BACK.has(code)) return "unreached";
    return LOST.has(code) ? "lost" : undefined;
  }

  /** A low-level failure as a {@link DatabaseError} that says what is wrong and what to do. */
  error(error: unknown): Error {
    if (
      error instanceof DatabaseError || error instanceof TypeError || error instanceof RangeError ||
      !(error instanceof Error)
    ) {
      return error instanceof Error ? error : new DatabaseError(String(error));
    }
    const code = (error as { code?: unknown }).code;
    // The pool refuses calls once ended ("connection lost" would send the reader to the network).
    if (this.#ended && code === "CONNECTION_ENDED") return this.closedError();
    const where = `the PostgreSQL server at '${this.location}'`;
    let text: string;
    if (code === "57014" || serverCancelled(error)) {
      text = `${capital(where)} cancelled the call (${error.message}): it ran past requestTimeoutMs ` +
        `(${this.requestTimeoutMs} ms, the server's statement_timeout unless the URL sets one), or was ` +
        `cancelled there. Nothing of it was applied.`;
    } else if (code === "QUERY_TIMEOUT") {
      text = `${capital(where)} did not answer within ${deadlines(this.requestTimeoutMs).client} ms ` +
        `(${error.message}). A write under way may or may not have been applied.`;
    } else if (code === "QUEUE_TIMEOUT") {
      text = `${capital(where)} did not answer within ${this.requestTimeoutMs} ms (${error.message}): ` +
        `no connection could be opened, or none became free. Nothing was written.`;
    } else if (typeof code === "string" && UNREACHED.has(code)) {
      text = `Cannot reach ${where} (${error.message}). Check the URL, that the server is running, and ` +
        `that this machine can reach it.`;
    } else if (code === "55P03") {
      text = `A lock on ${where} stayed held by another session for over ${this.requestTimeoutMs} ms, ` +
        `and the server cancelled the call: nothing of it was applied. Try again; if it persists, look for ` +
        `a session holding a long transaction.`;
    } else if (code === "28P01" || code === "28000") {
      text = `${capital(where)} refused the login: ${error.message}. Check the user and password ` +
        `(in the URL or PGPASSWORD).`;
    } else if (code === "3D000") {
      text = `${capital(where)} has no such database: ${error.message}. Create it first (CREATE DATABASE).`;
    } else if (typeof code === "string" && (LOST.has(code) || /^(CONNECTION_|ECONN)/.test(code))) {
      text = `The connection to ${where} was lost (${error.message}). A write under way may or may not ` +
        `have been applied.`;
    } else {
      text = `${capital(where)} failed: ${error.message}`;
    }
    return new DatabaseError(text, { cause: error });
  }
}

/** Whether `error` is the driver's timeout of a call that the server then cancelled (its cause: 57014). */
function serverCancelled(error: unknown): boolean {
  const { code, cause } = (error ?? {}) as { code?: unknown; cause?: { code?: unknown } };
  return code === "QUERY_TIMEOUT" && cause?.code === "57014";
}

function capital(text: string): string {
  return text[0]!.toUpperCase() + text.slice(1);
}
