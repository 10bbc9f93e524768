/**
 * The driver for a libSQL server (sqld, Turso), on `@libsql/client`, which speaks its protocol.
 *
 * @module
 */
import { type Client, createClient, type InStatement, type ResultSet } from "@libsql/client";
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

function toClientStatement({ sql, args }: SqlStatement): InStatement {
  return { sql, args: args as InStatement extends { args?: infer A } ? A : never };
}

export class RemoteDriver implements SqlDriver {
  readonly #client: Client;

  constructor(url: string, authToken: string | undefined) {
    this.#client = createClient({ url, authToken });
  }

  async execute(statement: SqlStatement): Promise<StatementResult> {
    return toResult(await this.#client.execute(toClientStatement(statement)), statement.raw);
  }

  async batch(statements: readonly SqlStatement[]): Promise<StatementResult[]> {
    const results = await this.#client.batch(statements.map(toClientStatement), "write");
    return results.map((result, i) => toResult(result, statements[i].raw));
  }

  async transaction(): Promise<DriverTransaction> {
    const tx = await this.#client.transaction("write");
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
    this.#client.close();
  }
}
