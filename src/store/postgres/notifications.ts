/**
 * Commit notifications: idle workers are woken by `LISTEN` on the channel that migration 2's triggers
 * notify when a transaction that made tasks queued commits, on any host. One listening connection per
 * store, opened for the first listener and closed after the last. Best effort, as the contract says:
 * a notification lost (while the listening connection reconnects, say) is made up for by a call each time
 * the LISTEN takes effect, and by polling.
 *
 * @module
 */
import type { PgConnection } from "./connection.ts";
import { NOTIFY_CHANNEL } from "./migrations.ts";

/** The longest pause before a LISTEN that failed is tried again. */
const LONGEST_PAUSE_MS = 1000;

export class Notifications {
  readonly #conn: PgConnection;
  readonly #listeners = new Set<() => void>();
  /** The LISTEN under way or in force, and how to end it. */
  #listening: Promise<{ unlisten: () => Promise<void> } | undefined> | undefined;
  /** The next try of a LISTEN that failed, and how many have failed in a row. */
  #retry: ReturnType<typeof setTimeout> | undefined;
  #failures = 0;
  #closed = false;

  readonly #channel: string;

  /** @param channel what to LISTEN on: the runnable tasks' channel, or the finished tasks' (migration 5) */
  constructor(conn: PgConnection, channel: string = NOTIFY_CHANNEL) {
    this.#conn = conn;
    this.#channel = channel;
  }

  /** Calls `listener` after each notification; returns the function that stops it. */
  watch(listener: () => void): () => void {
    // A listener of its own, so that one function given twice can be stopped twice.
    const own = () => listener();
    this.#listeners.add(own);
    this.#listen();
    return () => {
      if (!this.#listeners.delete(own) || this.#listeners.size > 0) return;
      clearTimeout(this.#retry);
      this.#retry = undefined;
      const listening = this.#listening;
      this.#listening = undefined;
      void listening?.then((listen) => listen?.unlisten()).catch(() => {});
    };
  }

  /**
   * Starts listening, unless it is under way. Once listening (at first, and again after each reconnect,
   * which the driver makes with backoff), the listeners are called too: what committed before the LISTEN
   * took effect sent its notification to no one. A first LISTEN that fails (no server now) is tried again
   * after a pause, growing to a second, for as long as anyone listens; polling finds the tasks meanwhile.
   */
  #listen(): void {
    if (this.#listening || this.#retry || this.#closed || this.#listeners.size === 0) return;
    const callAll = () => {
      for (const each of [...this.#listeners]) each();
    };
    const listening = this.#conn.sql.listen(this.#channel, callAll, callAll).then(
      (listen) => {
        this.#failures = 0;
        return listen;
      },
      () => {
        if (this.#listening !== listening) return undefined;
        this.#listening = undefined;
        const pause = Math.min(LONGEST_PAUSE_MS, 50 * 2 ** this.#failures++);
        this.#retry = setTimeout(() => {
          this.#retry = undefined;
          this.#listen();
        }, pause);
        return undefined;
      },
    );
    this.#listening = listening;
  }

  /** Tries no LISTEN again: the store is closing (its pool ends every connection, the listening one too). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#retry = undefined;
  }
}
