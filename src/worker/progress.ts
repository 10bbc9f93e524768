/**
 * `ctx.progress(value)`: a handler's progress, written under the task's lease. A handler may report
 * progress far more often than a write takes (every item of a loop), so calls made while one write is
 * under way are coalesced: only the latest value is written next, and every caller waiting for it learns
 * how that write went.
 *
 * @module
 */

export class ProgressWriter {
  readonly #write: (json: string) => Promise<void>;
  /** The latest value no write has taken yet. */
  #latest: string | null = null;
  /** The write under way, if any. */
  #flight: Promise<void> | null = null;

  /** @param write writes one value under the lease; rejects when the lease is lost */
  constructor(write: (json: string) => Promise<void>) {
    this.#write = write;
  }

  /** Sets the progress to `json`; resolves once it, or a later value, is written. */
  async set(json: string): Promise<void> {
    this.#latest = json;
    while (this.#latest !== null) {
      if (this.#flight) {
        // Whatever that write's fate, the latest value still has to be written by someone.
        await this.#flight.catch(() => {});
        continue;
      }
      const value = this.#latest;
      this.#latest = null;
      const flight = this.#write(value).finally(() => {
        if (this.#flight === flight) this.#flight = null;
      });
      this.#flight = flight;
      return await flight;
    }
    // A later call took this value into its write: this call ends as that write does.
    if (this.#flight) await this.#flight;
  }
}
