/**
 * The narrow interface the SQLite store needs from a database driver: run a statement, run a batch of
 * statements atomically, and hold an interactive write transaction. Two drivers implement it: one on an
 * embedded file (`local_driver.ts`) and one on a libSQL server (`remote_driver.ts`).
 *
 * @module
 */

/** A value SQLite can bind. */
export type SqlValue = string | number | bigint | null | Uint8Array;

/** SQL text with positional (`?`) parameters. */
export interface SqlStatement {
  sql: string;
  args: readonly SqlValue[];
  /** Rows come back in `values`, as arrays in column order, which is cheaper than keyed objects. */
  raw?: boolean;
}

/** A result row, keyed by column name. */
export type SqlRow = Record<string, unknown>;

export interface StatementResult {
  rows: SqlRow[];
  /** The rows of a `raw` statement. */
  values?: unknown[][];
  rowsAffected: number;
  lastInsertRowid: number | undefined;
}

/** An open `BEGIN IMMEDIATE` transaction. */
export interface DriverTransaction {
  execute(statement: SqlStatement): Promise<StatementResult>;
  /** Runs several `;`-separated statements without parameters (migrations). */
  executeMultiple(sql: string): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  /** Rolls back if still open; frees the transaction. */
  close(): void;
  readonly closed: boolean;
}

export interface SqlDriver {
  /** Runs one statement in its own implicit transaction. */
  execute(statement: SqlStatement): Promise<StatementResult>;
  /** Runs statements as one write transaction: all of them take effect, or none does. */
  batch(statements: readonly SqlStatement[]): Promise<StatementResult[]>;
  transaction(): Promise<DriverTransaction>;
  close(): void;
}
