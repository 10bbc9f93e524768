/**
 * Calls that outlive a server restart or a lost connection. The pool opens new connections by itself; what
 * is decided here is whether a call that failed on the way is made again, and for how long.
 *
 * A call that never reached the server (no connection could be opened: the server is restarting, or
 * unreachable) did nothing, so it is always made again. A call whose connection was lost while it was under
 * way (the server stopped, the network dropped or went silent) may or may not have been applied: it is made
 * again only when it is **repeatable**, doing it twice changing nothing more than doing it once, which every
 * call a worker makes is: writes under a lease's fence, heartbeats, claims (a claim whose answer was lost
 * leaves its tasks leased to no one until their leases expire and they are reaped), reaps, reads. A call
 * that is not (an enqueue without an idempotency key, an operator's cancel, a log line) fails instead, with
 * an error that says it may or may not have been applied.
 *
 * A call made again is told how late it is (the milliseconds since it was first made), so that the times it
 * writes are as late: a claim's lease deadline, a heartbeat's, a task's `updatedAt`. A heartbeat made again
 * 20 s later must extend its leases from then, not from when it was first sent.
 *
 * Calls are made again after 50 ms, then twice as long each time up to a second (with jitter, so that a
 * fleet does not reconnect in step), until one succeeds or `reconnectTimeoutMs` has passed since the first
 * failure: then the last failure is thrown, saying how long it was tried. Only on a server the store has
 * reached before: a wrong URL, or a server down when the process starts, fails at once.
 *
 * @module
 */
import { DatabaseError } from "../../errors.ts";
import type { PgConnection } from "./connection.ts";

/** The first pause before a call is made again, and the longest. */
const FIRST_PAUSE_MS = 50;
const LONGEST_PAUSE_MS = 1000;

export class Reconnect {
  readonly #conn: PgConnection;
  /** Whether a call has ever succeeded: a server never reached is a mistake to report, not to wait out. */
  #reached = false;
  #closed = false;
  /** Ends the pauses under way, for close(). */
  readonly #wakers = new Set<() => void>();

  constructor(conn: PgConnection) {
    this.#conn = conn;
  }

  /**
   * Makes `call`, and makes it again as the module says while the server cannot be reached, or (when
   * `repeatable`) while its connection was lost.
   *
   * @param call given 0, and when made again, the milliseconds since it was first made, to add to its times
   *
   * @throws the call's failure, when it is not one to wait out; a {@link DatabaseError} saying how long the
   *   call was tried, when `reconnectTimeoutMs` passed
   */
  async run<T>(repeatable: boolean, call: (late: number) => Promise<T>): Promise<T> {
    const began = performance.now();
    try {
      const result = await call(0);
      this.#reached = true;
      return result;
    } catch (error) {
      return await this.#again(repeatable, call, error, began);
    }
  }

  /** Ends every pause under way: the calls waiting in them fail with their last failure. */
  close(): void {
    this.#closed = true;
    for (const wake of this.#wakers) wake();
  }

  async #again<T>(
    repeatable: boolean,
    call: (late: number) => Promise<T>,
    failure: unknown,
    began: number,
  ): Promise<T> {
    const timeoutMs = this.#conn.reconnectTimeoutMs;
    const started = performance.now();
    for (let attempt = 0;; attempt++) {
      const kind = this.#reached && timeoutMs > 0 ? this.#conn.failureOf(failure) : undefined;
      if (kind === undefined || (kind === "lost" && !repeatable)) throw failure;
      const left = timeoutMs - (performance.now() - started);
      if (left <= 0 || this.#closed) throw this.#gaveUp(failure, timeoutMs);
      await this.#pause(Math.min(left, pauseBefore(attempt)));
      if (this.#closed) throw this.#gaveUp(failure, timeoutMs);
      try {
        return await call(Math.round(performance.now() - began));
      } catch (error) {
        failure = error;
      }
    }
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakers.add(wake);
    });
  }

  #gaveUp(failure: unknown, timeoutMs: number): Error {
    const message = failure instanceof Error ? failure.message : String(failure);
    const why = this.#closed ? "until the store was closed" : `for ${timeoutMs} ms (reconnectTimeoutMs)`;
    return new DatabaseError(`${message} It was tried again ${why}.`, {
      cause: failure instanceof DatabaseError ? failure.cause : failure,
    });
  }
}

/** How long to wait before the call is made again: growing, with jitter. */
function pauseBefore(attempt: number): number {
  const ms = Math.min(LONGEST_PAUSE_MS, FIRST_PAUSE_MS * 2 ** attempt);
  return ms / 2 + Math.random() * (ms / 2);
}
