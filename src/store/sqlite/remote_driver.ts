/**
 * The driver for a libSQL server (sqld, Turso), on `@libsql/client`, which speaks its protocol.
 *
 * @module
 */
import type { Client, InStatement, ResultSet } from "@libsql/client";
import { LibsqlError } from "@libsql/core/api";
import type { DriverTransaction, SqlDriver, SqlRow, SqlStatement, StatementResult } from "./driver.ts";

function toResult(result: ResultSet, raw: boolean | undefined): StatementResult {
  if (raw) {
    return {
      rows: [],
      values: result.rows.map((row) => Array.from(row)),
      rowsAffected: result.rowsAffected,
      lastInsertRowid: result.lastInsertRowid === undefined ? undefined : Number(result.lastInsertRowid),
    };
  }
  const rows = result.rows.map((row) => {
    const object: SqlRow = {};
    result.columns.forEach((column, i) => (object[column] = row[i]));
    return object;
  });
  return {
    rows,
    rowsAffected: result.rowsAffected,
    lastInsertRowid: result.lastInsertRowid === undefined ? undefined : Number(result.lastInsertRowid),
  };
}

/**
 * The runtime's `fetch`, with a deadline, and with a server it cannot reach reported as a LibsqlError rather
 * than the runtime's own TypeError (worded differently by each): then it is reported like every other
 * database failure, while the client's own TypeErrors and RangeErrors (a bad argument) stay what they are.
 */
function reachingFetch(timeoutMs: number): (request: Request) => Promise<Response> {
  return (request) => {
    const signal = AbortSignal.timeout(timeoutMs);
    return fetch(new Request(request, { signal })).catch((error: unknown) => {
      if (signal.aborted) throw timeoutError(timeoutMs);
      const message = error instanceof Error ? error.message : String(error);
      throw new LibsqlError(message, "SERVER_UNREACHABLE", undefined, undefined, error as Error);
    });
  };
}

/** A call the server did not answer in time; `timeoutMs` says how long it was given. */
function timeoutError(timeoutMs: number): LibsqlError & { timeoutMs: number } {
  return Object.assign(new LibsqlError(`no answer within ${timeoutMs} ms`, "SERVER_TIMEOUT"), { timeoutMs });
}

/**
 * `work`, or a SERVER_TIMEOUT error once `timeoutMs` has passed without an answer: a server that accepts
 * connections and never answers must not hang its caller (the client sets no deadline of its own on
 * WebSockets).
 */
function withDeadline<T>(work: Promise<T>, timeoutMs: number, onTimeout: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout();
      reject(timeoutError(timeoutMs));
    }, timeoutMs);
    work.then(resolve, reject).finally(() => clearTimeout(timer));
  });
}

function toClientStatement({ sql, args }: SqlStatement): InStatement {
  return { sql, args: args as InStatement extends { args?: infer A } ? A : never };
}

export class RemoteDriver implements SqlDriver {
  readonly #url: string;
  readonly #authToken: string | undefined;
  readonly #timeoutMs: number;
  /**
   * `@libsql/client` is evaluated with the first server connection rather than at start: with what it
   * imports, it is about a fifth of the start of every `prismq` command, most of which only open files.
   * The specifier is a literal, so the bundlers still link it in at build time.
   */
  #loaded: Promise<Client>;
  #closed = false;

  /** @param timeoutMs how long one call may wait for the server's answer */
  constructor(url: string, authToken: string | undefined, timeoutMs: number) {
    this.#url = url;
    this.#authToken = authToken;
    this.#timeoutMs = timeoutMs;
    this.#loaded = this.#connect();
  }

  #connect(): Promise<Client> {
    const loaded = import("@libsql/client").then(({ createClient }) =>
      createClient({
        url: this.#url,
        ...(this.#authToken !== undefined && { authToken: this.#authToken }),
        fetch: reachingFetch(this.#timeoutMs),
      })
    );
    // A bad URL is reported by the first statement, as a file that cannot be opened is. (Checking it now
    // would load the client's URL parser, whose pattern alone costs a Bun process about 20 ms at start.)
    loaded.catch(() => {});
    return loaded;
  }

  /** Runs `work` on the client within the deadline; a client that let it pass is replaced by a fresh one. */
  async #call<T>(work: (client: Client) => Promise<T>): Promise<T> {
    const loaded = this.#loaded;
    const client = await loaded;
    if (this.#closed) throw new LibsqlError("The database connection is closed.", "CLIENT_CLOSED");
    return withDeadline(work(client), this.#timeoutMs, () => {
      if (this.#loaded !== loaded || this.#closed) return;
      // Its connection may be stuck: the next call starts on a new one.
      client.close();
      this.#loaded = this.#connect();
    });
  }

  execute(statement: SqlStatement): Promise<StatementResult> {
    return this.#call(async (client) =>
      toResult(await client.execute(toClientStatement(statement)), statement.raw)
    );
  }

  batch(statements: readonly SqlStatement[]): Promise<StatementResult[]> {
    return this.#call(async (client) => {
      const results = await client.batch(statements.map(toClientStatement), "write");
      return results.map((result, i) => toResult(result, statements[i]!.raw));
    });
  }

  async transaction(): Promise<DriverTransaction> {
    const tx = await this.#call((client) => client.transaction("write"));
    const timed = <T>(work: Promise<T>) => withDeadline(work, this.#timeoutMs, () => tx.close());
    // The client sends BEGIN with the transaction's first statement. Sent now, a BEGIN that finds the
    // database locked by another client fails here, which the connection retries within its busy timeout,
    // and not inside the caller's work, which it cannot run again.
    try {
      await timed(tx.execute("SELECT 1"));
    } catch (error) {
      tx.close();
      throw error;
    }
    return {
      execute: async (statement) =>
        toResult(await timed(tx.execute(toClientStatement(statement))), statement.raw),
      executeMultiple: (sql) => timed(tx.executeMultiple(sql)),
      commit: () => timed(tx.commit()),
      rollback: () => timed(tx.rollback()),
      close: () => tx.close(),
      get closed() {
        return tx.closed;
      },
    };
  }

  close(): void {
    this.#closed = true;
    this.#loaded.then((client) => client.close(), () => {});
  }
}
