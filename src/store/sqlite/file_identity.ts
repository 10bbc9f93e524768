/**
 * Noticing that a database file was deleted, moved or replaced while this process has it open. SQLite keeps
 * working on the file it opened, whatever now lies at its path: a worker would go on with the old file
 * while producers write to a new one at the same path, and their tasks would wait forever. So the file at
 * the path is compared with the one opened, at most once a second, and any difference stops every use of
 * the connection with an error that says what happened.
 *
 * @module
 */
import { statSync } from "node:fs";
import { DatabaseError } from "../../errors.ts";

const CHECK_EVERY_MS = 1000;

export class FileIdentity {
  readonly #path: string;
  #identity: string | undefined = undefined;
  #lastCheck = -Infinity;
  #lost: DatabaseError | undefined = undefined;

  /** @param path absolute, so that a later `chdir()` cannot make it name another file */
  constructor(path: string) {
    this.#path = path;
  }

  /** Remembers the file at the path as the one opened; call right after opening it. */
  opened(): void {
    if (this.#identity !== undefined) return;
    this.#identity = identityOf(this.#path);
  }

  /** @throws {DatabaseError} once the file at the path is no longer the one opened */
  check(): void {
    if (this.#lost) throw this.#lost;
    if (this.#identity === undefined) return;
    const now = performance.now();
    if (now - this.#lastCheck < CHECK_EVERY_MS) return;
    this.#lastCheck = now;
    const current = identityOf(this.#path);
    if (current === this.#identity) return;
    this.#lost = new DatabaseError(
      `The database file '${this.#path}' was ${
        current === undefined ? "deleted or moved" : "replaced by another file"
      } ` +
        `while this process had it open, so nothing more is read from or written to it. Put the database ` +
        `back, or restart the process to use the file now at that path.`,
    );
    throw this.#lost;
  }
}

/** The device and inode of the file at `path`, or undefined when there is none. */
function identityOf(path: string): string | undefined {
  try {
    const { dev, ino } = statSync(path);
    return `${dev}:${ino}`;
  } catch {
    return undefined;
  }
}
