/**
 * What a failure of the database means to the person using it: low-level errors from the drivers and the
 * libSQL client, classified (busy, database-level) and rewritten as a {@link DatabaseError} that says what
 * is wrong and what to do.
 *
 * @module
 */
import { LibsqlError } from "@libsql/core/api";
import { redactLocation } from "../../db_url.ts";
import { DatabaseError } from "../../errors.ts";

/**
 * A libSQL error, by its class or, should the client have brought a second copy of `@libsql/core` along
 * (a package manager that could not share one), by its name and code.
 */
function isLibsqlError(error: unknown): error is LibsqlError {
  return error instanceof LibsqlError ||
    (error instanceof Error && error.name === "LibsqlError" &&
      typeof (error as LibsqlError).code === "string");
}

/** Whether `error` is SQLite saying another connection holds the lock: worth trying again. */
export function busyCode(error: unknown): boolean {
  if (!isLibsqlError(error)) return false;
  return /^SQLITE_(BUSY|LOCKED)/.test(error.code) || /^SQLITE_(BUSY|LOCKED)/.test(error.extendedCode ?? "");
}

const DATABASE_LEVEL =
  /^SQLITE_(BUSY|LOCKED|CANTOPEN|CORRUPT|NOTADB|READONLY|IOERR|FULL|PERM|AUTH)|^(URL_|HRANA_|SERVER_)|^CLIENT_CLOSED$/;

/** Whether `error` is about the database as a whole (opening, locks, disk, server), not one statement. */
export function isDatabaseLevelError(error: unknown): boolean {
  if (error instanceof DatabaseError) return false;
  if (isLibsqlError(error)) return DATABASE_LEVEL.test(error.code);
  return error instanceof Error && /Unable to open connection|ConnectionFailed/.test(error.message);
}

/** Rewrites a low-level failure as a {@link DatabaseError} that says what is wrong and what to do. */
export function toDatabaseError(error: unknown, given: string): Error {
  if (error instanceof DatabaseError || error instanceof RangeError || error instanceof TypeError) {
    return error;
  }
  const location = redactLocation(given);
  const code = isLibsqlError(error) ? error.code : "";
  const message = error instanceof Error ? error.message : String(error);
  const where = `database '${location}'`;
  let text: string;
  if (/CANTOPEN/.test(code) || /Unable to open connection|ConnectionFailed/.test(message)) {
    text =
      `Cannot open ${where}: the file cannot be created or opened. Check that its folder exists and is ` +
      `writable.`;
  } else if (/NOTADB|CORRUPT/.test(code)) {
    text = `The ${where} is not a valid SQLite database or is corrupt. Restore it from a backup or point ` +
      `to another file.`;
  } else if (/READONLY|PERM/.test(code)) {
    text = `The ${where} is read-only. Make the file and its folder writable, or use another location.`;
  } else if (/FULL/.test(code)) {
    text = `The disk holding ${where} is full. Free some space and try again.`;
  } else if (/BUSY|LOCKED/.test(code)) {
    text =
      `The ${where} stayed locked by another process for too long. Try again; if it persists, look for ` +
      `a process holding a long transaction.`;
  } else if (code === "CLIENT_CLOSED") {
    text = `The ${where} is closed: its QueueDatabase was closed. Open a new one to go on using it.`;
  } else if (/^URL_/.test(code)) {
    text = `The database URL '${location}' is invalid: ${message}`;
  } else if (code === "SERVER_TIMEOUT") {
    const { timeoutMs } = error as { timeoutMs?: number };
    text = `The libSQL server at '${location}' did not answer within ${timeoutMs} ms. Check that it is ` +
      `running and reachable; a write under way may or may not have been applied.`;
  } else if (code === "SERVER_UNREACHABLE") {
    const cause = (error as Error).cause;
    const why = cause instanceof Error ? cause.message : message;
    text = `Cannot reach the libSQL server at '${location}' (${why}). Check the URL, that the server is ` +
      `running, and that this machine can reach it.`;
  } else {
    text = `The ${where} failed: ${message}`;
  }
  return new DatabaseError(text, { cause: error });
}
