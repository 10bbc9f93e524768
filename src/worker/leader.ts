/**
 * Leadership of the fleet's maintenance: work that must happen once however many workers share the
 * database (reaping expired leases now; enqueueing due schedules later). On a store that elects leaders
 * (PostgreSQL: `Store.leaderElect`), one worker at a time leads it, under a lease on a row that it renews
 * every third of its term; when the leader dies its lease expires and the next worker to bid takes over. A
 * leader that stops resigns, so that another takes over at once. On a store without elections (SQLite),
 * every worker does the work itself, as before.
 *
 * A term is trusted on this worker's own elapsed time, from the moment its bid was sent: it ends here no
 * later than the lease does on the server, whatever the wall clocks say. Should two workers lead for a
 * moment all the same (a leader stalled past its lease, then resumed), the work stays correct: a reap is
 * conditional on each lease's claim and deadline, so two at once reap nothing twice.
 *
 * @module
 */
import { type Clock, elapsedOn } from "../clock.ts";
import type { Store } from "../store/store.ts";

/** The work led: one lease for all of the fleet's maintenance. */
const MAINTENANCE = "maintenance";

type LeaderStore = Pick<Store, "leaderElect" | "leaderResign">;

export class Leadership {
  readonly #store: LeaderStore;
  readonly #clock: Clock;
  readonly #workerId: string;
  readonly #ttlMs: number;
  /** The work led: one lease per kind of work (see {@link MAINTENANCE}). */
  readonly #name: string;
  /** Elapsed time when the last bid was sent. */
  #lastBid = -Infinity;
  /** Elapsed time until which this worker's term surely lasts; -Infinity when it leads nothing. */
  #until = -Infinity;

  /**
   * @param ttlMs how long a term lasts unless renewed
   * @param name the work led, `"maintenance"` unless given: the scheduler leads `"schedules"` apart
   */
  constructor(store: LeaderStore, clock: Clock, options: { workerId: string; ttlMs: number; name?: string }) {
    this.#store = store;
    this.#clock = clock;
    this.#workerId = options.workerId;
    this.#ttlMs = options.ttlMs;
    this.#name = options.name ?? MAINTENANCE;
  }

  /** Whether the store elects leaders: without elections, every worker leads its own maintenance. */
  get elects(): boolean {
    return this.#store.leaderElect !== undefined;
  }

  /**
   * Whether this worker leads the maintenance now. Bids (or renews its lease) first when a third of a term
   * has passed since its last bid.
   */
  async leads(): Promise<boolean> {
    if (!this.elects) return true;
    const sent = elapsedOn(this.#clock);
    if (sent - this.#lastBid >= this.#ttlMs / 3) {
      this.#lastBid = sent;
      const elected = await this.#store.leaderElect!({
        name: this.#name,
        leaderId: this.#workerId,
        now: this.#clock.now(),
        ttlMs: this.#ttlMs,
      });
      this.#until = elected ? sent + this.#ttlMs : -Infinity;
    }
    return elapsedOn(this.#clock) < this.#until;
  }

  /** Ends this worker's term, if it has one, so that another worker takes over at its next bid. */
  async resign(): Promise<void> {
    const led = this.#until !== -Infinity;
    this.#until = this.#lastBid = -Infinity;
    if (led) await this.#store.leaderResign?.(this.#name, this.#workerId);
  }
}
