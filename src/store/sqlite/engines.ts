/**
 * The SQLite engines an embedded file can run on, behind one small interface for `LocalDriver`:
 *
 * - `node:sqlite`, built into Deno and Bun (and reached synchronously through `process.getBuiltinModule`,
 *   so nothing is imported where it is missing). It runs a statement in about two thirds of libsql's time
 *   here, and a statement refused the write lock is reset, so single writes need no transaction of their own.
 * - `libsql`, the engine `@libsql/client` uses for files: Node 20 has no `node:sqlite`.
 *
 * `PRISMQ_SQLITE_ENGINE=libsql` (or `node`) chooses one. Both write the same file format, so processes on
 * different engines share a database.
 *
 * @module
 */
import process from "node:process";
import { LibsqlError } from "@libsql/core/api";
import Database from "libsql";
import { invalidType } from "../../errors.ts";
import { readEnv } from "../../platform.ts";

export interface EngineStatement {
  /** Whether it returns rows (a SELECT, or a write with RETURNING). */
  readonly reader: boolean;
  /** Its rows: arrays of values when prepared raw, otherwise plain objects by column name. */
  all(args: readonly unknown[]): unknown[];
  run(args: readonly unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint };
}

export interface EngineConnection {
  exec(sql: string): void;
  prepare(sql: string, raw: boolean): EngineStatement;
  readonly inTransaction: boolean;
  close(): void;
}

export interface Engine {
  readonly name: "node:sqlite" | "libsql";
  /**
   * Whether a statement refused for a lock is reset, leaving no transaction open behind it. Where it is
   * not (libsql), every write outside a transaction must take the lock first with `BEGIN IMMEDIATE`.
   */
  readonly resetsRefusedStatements: boolean;
  open(path: string): EngineConnection;
  /** Its errors as `LibsqlError`, the one error type the rest of the store understands. */
  toError(error: unknown): unknown;
}

/** SQLite's primary result codes, to report an extended code's family as `@libsql/client` does. */
const PRIMARY_CODES: Record<number, string> = {
  1: "SQLITE_ERROR",
  3: "SQLITE_PERM",
  4: "SQLITE_ABORT",
  5: "SQLITE_BUSY",
  6: "SQLITE_LOCKED",
  7: "SQLITE_NOMEM",
  8: "SQLITE_READONLY",
  9: "SQLITE_INTERRUPT",
  10: "SQLITE_IOERR",
  11: "SQLITE_CORRUPT",
  13: "SQLITE_FULL",
  14: "SQLITE_CANTOPEN",
  17: "SQLITE_SCHEMA",
  18: "SQLITE_TOOBIG",
  19: "SQLITE_CONSTRAINT",
  20: "SQLITE_MISMATCH",
  21: "SQLITE_MISUSE",
  23: "SQLITE_AUTH",
  25: "SQLITE_RANGE",
  26: "SQLITE_NOTADB",
};

function libsqlErrorOf(error: Error, extendedCode: string, rawCode: number | undefined): LibsqlError {
  const primary = rawCode === undefined ? extendedCode : PRIMARY_CODES[rawCode & 0xff] ?? extendedCode;
  return new LibsqlError(error.message, primary, extendedCode, rawCode, error);
}

export const LIBSQL: Engine = {
  name: "libsql",
  resetsRefusedStatements: false,
  open(path) {
    const db = new Database(path);
    return {
      exec: (sql) => void db.exec(sql),
      prepare(sql, raw) {
        const statement = db.prepare(sql);
        if (raw) statement.raw(true);
        return {
          reader: statement.reader,
          all: (args) => statement.all(args as unknown[]) as unknown[],
          run: (args) => statement.run(args as unknown[]),
        };
      },
      get inTransaction() {
        return db.inTransaction;
      },
      close: () => db.close(),
    };
  },
  toError(error) {
    if (!(error instanceof Error) || error instanceof LibsqlError) return error;
    const { code, rawCode } = error as Error & { code?: unknown; rawCode?: unknown };
    if (typeof code !== "string" || !code.startsWith("SQLITE_")) return error;
    return libsqlErrorOf(error, code, typeof rawCode === "number" ? rawCode : undefined);
  },
};

/** What this code uses of `node:sqlite`. */
interface NodeSqlite {
  DatabaseSync: new (path: string) => {
    exec(sql: string): void;
    prepare(sql: string): {
      all(...args: unknown[]): unknown[];
      run(...args: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint };
      columns(): unknown[];
      setReturnArrays(enabled: boolean): void;
      setReadBigInts(enabled: boolean): void;
    };
    readonly isTransaction: boolean;
    function(name: string, options: { deterministic: boolean }, fn: (x: number) => number): void;
    close(): void;
  };
}

/** SQLite's own wording (`sqlite3_errstr`) of the codes the store tells apart, back to the codes. */
const CODE_BY_MESSAGE: Record<string, number> = {
  "access permission denied": 3,
  "database is locked": 5,
  "database table is locked": 6,
  "attempt to write a readonly database": 8,
  "disk I/O error": 10,
  "database disk image is malformed": 11,
  "database or disk is full": 13,
  "unable to open database file": 14,
  "file is not a database": 26,
};

/** The code of one of SQLite's messages, which may be followed by ": <detail>". */
function codeOfMessage(message: string): number {
  const colon = message.indexOf(": ");
  const head = colon === -1 ? message : message.slice(0, colon);
  return CODE_BY_MESSAGE[head] ??
    CONSTRAINT_CODES[/^(\w+(?: \w+)?) constraint failed$/.exec(head)?.[1] ?? ""] ??
    (head.endsWith("constraint failed") ? 19 : 1);
}

/** The extended constraint codes, by the words SQLite's message starts with ("UNIQUE constraint failed"). */
const CONSTRAINT_CODES: Record<string, number> = {
  "CHECK": 275,
  "FOREIGN KEY": 787,
  "NOT NULL": 1299,
  "PRIMARY KEY": 1555,
  "UNIQUE": 2067,
};

/** Names of the extended result codes PrismQ and its users are likely to meet, as libsql reports them. */
const EXTENDED_CODES: Record<number, string> = {
  261: "SQLITE_BUSY_RECOVERY",
  262: "SQLITE_LOCKED_SHAREDCACHE",
  275: "SQLITE_CONSTRAINT_CHECK",
  517: "SQLITE_BUSY_SNAPSHOT",
  773: "SQLITE_BUSY_TIMEOUT",
  787: "SQLITE_CONSTRAINT_FOREIGNKEY",
  1299: "SQLITE_CONSTRAINT_NOTNULL",
  1555: "SQLITE_CONSTRAINT_PRIMARYKEY",
  1811: "SQLITE_CONSTRAINT_TRIGGER",
  2067: "SQLITE_CONSTRAINT_UNIQUE",
  2579: "SQLITE_CONSTRAINT_ROWID",
};

/**
 * A value as libsql gives it: integers as numbers (rounded past 2^53, where `node:sqlite` would throw
 * after the statement had run), blobs as ArrayBuffers.
 */
function libsqlValue(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Uint8Array) {
    return value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength);
  }
  return value;
}

function libsqlRow(row: unknown[]): unknown[] {
  for (let i = 0; i < row.length; i++) {
    const value = row[i];
    if (typeof value === "bigint" || value instanceof Uint8Array) row[i] = libsqlValue(value);
  }
  return row;
}

function libsqlObject(row: Record<string, unknown>): Record<string, unknown> {
  const plain: Record<string, unknown> = {};
  for (const key in row) plain[key] = libsqlValue(row[key]);
  return plain;
}

/** Values as `node:sqlite` binds them: it takes no booleans and no undefined. */
function bindable(args: readonly unknown[]): readonly unknown[] {
  // Nearly always there is nothing to change, and every statement passes here: copy only when needed.
  if (!args.some((arg) => arg === undefined || typeof arg === "boolean")) return args;
  return args.map((arg) => arg === undefined ? null : typeof arg === "boolean" ? Number(arg) : arg);
}

function nodeSqliteEngine(sqlite: NodeSqlite): Engine {
  return {
    name: "node:sqlite",
    resetsRefusedStatements: true,
    open(path) {
      const db = new sqlite.DatabaseSync(path);
      // Deno's SQLite is built without the math functions, and the weighted_random claim takes a logarithm.
      try {
        db.prepare("SELECT ln(1)").all();
      } catch {
        db.function("ln", { deterministic: true }, Math.log);
      }
      return {
        exec: (sql) => db.exec(sql),
        prepare(sql, raw) {
          const statement = db.prepare(sql);
          // Read as BigInt, so that reading can never fail once a write has run (see libsqlValue).
          statement.setReadBigInts(true);
          if (raw) statement.setReturnArrays(true);
          return {
            reader: statement.columns().length > 0,
            all: raw
              ? (args) => (statement.all(...bindable(args)) as unknown[][]).map(libsqlRow)
              // Its rows have no prototype; the rest of the store (and its users) expect plain objects.
              : (args) => (statement.all(...bindable(args)) as Record<string, unknown>[]).map(libsqlObject),
            run: (args) => statement.run(...bindable(args)),
          };
        },
        get inTransaction() {
          return db.isTransaction;
        },
        close: () => db.close(),
      };
    },
    toError(error) {
      if (!(error instanceof Error) || error instanceof LibsqlError) return error;
      const { errcode, code } = error as Error & { errcode?: unknown; code?: unknown };
      // Deno's exec() reports SQLite's message without its code: read the code back from the message.
      const number = typeof errcode === "number"
        ? errcode
        : code === "ERR_SQLITE_ERROR"
        ? codeOfMessage(error.message)
        : undefined;
      if (number === undefined) return error;
      return libsqlErrorOf(
        error,
        EXTENDED_CODES[number] ?? PRIMARY_CODES[number & 0xff] ?? "SQLITE_ERROR",
        number,
      );
    },
  };
}

/** The `node:sqlite` engine, or undefined where this runtime has no `node:sqlite`. */
export function nodeSqliteEngineIfPresent(): Engine | undefined {
  const getBuiltin = (process as { getBuiltinModule?: (name: string) => unknown }).getBuiltinModule;
  const sqlite = getBuiltin?.("node:sqlite") as NodeSqlite | undefined;
  return sqlite?.DatabaseSync ? nodeSqliteEngine(sqlite) : undefined;
}

/** The engine for embedded files in this process. */
export function chooseEngine(): Engine {
  const wanted = readEnv("PRISMQ_SQLITE_ENGINE");
  if (wanted !== undefined && wanted !== "libsql" && wanted !== "node") {
    throw invalidType(`PRISMQ_SQLITE_ENGINE must be 'node' or 'libsql', got '${wanted}'.`);
  }
  if (wanted === "libsql") return LIBSQL;
  // Node has node:sqlite from 22.5 on, but marks it experimental with a warning on stderr: Deno and Bun only.
  const runtime = globalThis as { Deno?: unknown; Bun?: unknown };
  if (wanted === "node" || runtime.Deno !== undefined || runtime.Bun !== undefined) {
    const engine = nodeSqliteEngineIfPresent();
    if (engine) return engine;
    if (wanted === "node") throw invalidType("PRISMQ_SQLITE_ENGINE=node: this runtime has no node:sqlite.");
  }
  return LIBSQL;
}
