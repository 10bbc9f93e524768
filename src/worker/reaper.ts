/**
 * The reaper: gives the tasks of workers that died back to the queue (or fails them, when no attempts
 * remain) once their leases have expired.
 *
 * A lease is taken only after this reaper has seen it expired, with the same deadline, for `graceMs` of its
 * own elapsed time. Expired means past its deadline on the wall clock, and wall clocks step: when every
 * process's clock jumps 45 s forward, or one host's runs ahead of another's, a live worker's leases look
 * expired at once. A live worker renews them within its heartbeat interval, changing their deadlines, so
 * they are spared; a dead worker's stay as they were and are reaped.
 *
 * On a store that elects leaders, only the leader of the fleet's maintenance reaps (see `leader.ts`); a
 * worker that is not, or no longer, the leader forgets the leases it saw expired, and a new leader watches
 * them for `graceMs` of its own before it takes them.
 *
 * @module
 */
import { type Clock, elapsedOn } from "../clock.ts";
import type { ExpiredLease, Store } from "../store/store.ts";
import type { Leadership } from "./leader.ts";

/** Most expired leases looked at in one round; the rest wait for the next. */
const ROUND_LIMIT = 1000;

export class Reaper {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #graceMs: number;
  readonly #leadership: Leadership;
  #lastRound = -Infinity;
  /** Leases seen expired, by claim and deadline, and when (elapsed time) each was first seen so. */
  #seen = new Map<string, number>();

  constructor(
    store: Store,
    clock: Clock,
    leadership: Leadership,
    options: { intervalMs: number; graceMs: number },
  ) {
    this.#store = store;
    this.#clock = clock;
    this.#leadership = leadership;
    this.#intervalMs = options.intervalMs;
    this.#graceMs = options.graceMs;
  }

  /**
   * Looks for expired leases, at most once per interval of elapsed time, and reaps those confirmed: when
   * this worker leads the fleet's maintenance (always, on a store without elections).
   */
  async reapIfDue(): Promise<void> {
    const elapsed = elapsedOn(this.#clock);
    if (elapsed - this.#lastRound < this.#intervalMs) return;
    this.#lastRound = elapsed;
    if (!(await this.#leadership.leads())) {
      this.#seen.clear();
      return;
    }
    const now = this.#clock.now();
    if (this.#graceMs === 0) {
      await this.#store.taskReapExpired(now);
      return;
    }
    const expired = await this.#store.taskExpiredLeases(now, ROUND_LIMIT);
    const seen = new Map<string, number>();
    const confirmed: ExpiredLease[] = [];
    for (const lease of expired) {
      const key = `${lease.id}:${lease.leaseToken}:${lease.leaseUntil}`;
      const since = this.#seen.get(key) ?? elapsed;
      seen.set(key, since);
      if (elapsed - since >= this.#graceMs) confirmed.push(lease);
    }
    this.#seen = seen;
    if (confirmed.length > 0) await this.#store.taskReapExpired(now, confirmed);
  }
}
