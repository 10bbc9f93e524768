/**
 * A host's clock corrected to the database server's. Processes on many hosts that share one server store and
 * compare times (lease deadlines, due times) read this, so that a host whose clock is off by minutes neither
 * takes live leases nor runs tasks early: each reading is the local clock plus the offset last measured
 * against the server, re-measured in the background every minute.
 *
 * @module
 */
import { type Clock, elapsedOn } from "./clock.ts";

/** How often the offset is measured again: clocks drift by milliseconds per hour, NTP steps them at once. */
const RESYNC_MS = 60_000;
/** After a failed measurement, readings wait this long before trying again: not a query per reading. */
const RETRY_MS = 5_000;
/**
 * Round trips per measurement, of which the shortest is kept: its middle is the closest to the server's
 * reading. The first often opens a connection, whose set-up comes before the question and skews its middle
 * (by up to 4 ms on a loaded machine, measured): then two processes on one host disagreed by that much,
 * and a task enqueued by one was not yet due for the other when its notification woke it.
 */
const SAMPLES = 2;

export class DatabaseClock implements Clock {
  readonly #local: Clock;
  readonly #serverTime: () => Promise<number>;
  #offset = 0;
  /** Elapsed-time reading of the last measurement, or undefined before the first. */
  #syncedAt: number | undefined = undefined;
  #syncing: Promise<void> | null = null;
  /** Elapsed-time reading when a background measurement last started. */
  #triedAt = -Infinity;

  constructor(local: Clock, serverTime: () => Promise<number>) {
    this.#local = local;
    this.#serverTime = serverTime;
  }

  /** The server's time now, as estimated on this host. */
  now(): number {
    const synced = this.#syncedAt;
    const elapsed = elapsedOn(this.#local);
    if ((synced === undefined || elapsed - synced >= RESYNC_MS) && elapsed - this.#triedAt >= RETRY_MS) {
      // A failed measurement keeps the last offset; a reading after RETRY_MS tries again.
      this.#triedAt = elapsed;
      this.sync().catch(() => {});
    }
    return this.#local.now() + this.#offset;
  }

  elapsed(): number {
    return elapsedOn(this.#local);
  }

  /** Whether the offset has been measured at least once. */
  get synced(): boolean {
    return this.#syncedAt !== undefined;
  }

  /** Milliseconds the server's clock is ahead of the local one (negative: behind), as last measured. */
  get offsetMs(): number {
    return this.#offset;
  }

  /**
   * Measures the offset: the server's reading against the local clock at the middle of the round trip
   * (timed on the monotonic clock, so that a local step during it does not skew the result), on the
   * shortest of {@link SAMPLES} round trips.
   */
  sync(): Promise<void> {
    this.#syncing ??= (async () => {
      try {
        let best: { offset: number; roundTrip: number } | undefined;
        for (let sample = 0; sample < SAMPLES; sample++) {
          const wallBefore = this.#local.now();
          const before = elapsedOn(this.#local);
          const server = await this.#serverTime();
          const roundTrip = elapsedOn(this.#local) - before;
          if (best === undefined || roundTrip < best.roundTrip) {
            best = { offset: Math.round(server - (wallBefore + roundTrip / 2)), roundTrip };
          }
        }
        this.#offset = best!.offset;
        this.#syncedAt = elapsedOn(this.#local);
      } finally {
        this.#syncing = null;
      }
    })();
    return this.#syncing;
  }
}
