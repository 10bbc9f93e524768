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
 * The runtime's `fetch`, with a server it cannot reach reported as a LibsqlError rather than the runtime's
 * own TypeError (worded differently by each): then it is reported like every other database failure, while
 * the client's own TypeErrors and RangeErrors (a bad argument) stay what they are.
 */
function reachingFetch(request: Request): Promise<Response> {
  return fetch(request).catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    throw new LibsqlError(message, "SERVER_UNREACHABLE", undefined, undefined, error as Error);
  });
}

function toClientStatement({ sql, args }: SqlStatement): InStatement {
  return { sql, args: args as InStatement extends { args?: infer A } ? A : never };
}

export class RemoteDriver implements SqlDriver {
  /**
   * `@libsql/client` is evaluated with the first server connection rather than at start: with what it
   * imports, it is about a fifth of the start of every `prismq` command, most of which only open files.
   * The specifier is a literal, so the bundlers still link it in at build time.
   */
  readonly #loaded: Promise<Client>;
  #closed = false;

  constructor(url: string, authToken: string | undefined) {
    this.#loaded = import("@libsql/client").then(({ createClient }) =>
      createClient({ url, authToken, fetch: reachingFetch })
    );
    // A bad URL is reported by the first statement, as a file that cannot be opened is. (Checking it now
    // would load the client's URL parser, whose pattern alone costs a Bun process about 20 ms at start.)
    this.#loaded.catch(() => {});
  }

  async #client(): Promise<Client> {
    const client = await this.#loaded;
    if (this.#closed) throw new LibsqlError("The database connection is closed.", "CLIENT_CLOSED");
    return client;
  }

  async execute(statement: SqlStatement): Promise<StatementResult> {
    const client = await this.#client();
    return toResult(await client.execute(toClientStatement(statement)), statement.raw);
  }

  async batch(statements: readonly SqlStatement[]): Promise<StatementResult[]> {
    const client = await this.#client();
    const results = await client.batch(statements.map(toClientStatement), "write");
    return results.map((result, i) => toResult(result, statements[i].raw));
  }

  async transaction(): Promise<DriverTransaction> {
    const tx = await (await this.#client()).transaction("write");
    return {
      execute: async (statement) => toResult(await tx.execute(toClientStatement(statement)), statement.raw),
      executeMultiple: (sql) => tx.executeMultiple(sql),
      commit: () => tx.commit(),
      rollback: () => tx.rollback(),
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
