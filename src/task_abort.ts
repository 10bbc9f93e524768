/**
 * How a running task is told to stop: its handler's `ctx.signal`, and a promise the worker races the handler
 * against. Both are made only when first needed, since most quick handlers never look at their signal and
 * finish before anything could abort them: the worker then pays for neither.
 *
 * @module
 */
export class TaskAbort {
  #reason: unknown = undefined;
  #aborted = false;
  #controller: AbortController | null = null;
  #reject: ((reason: unknown) => void) | null = null;

  get aborted(): boolean {
    return this.#aborted;
  }

  /** The handler's signal. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** Aborts once; later calls change nothing. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    this.#reject?.(reason);
  }

  /** Settles `work`, or rejects with the abort reason as soon as there is one, whichever comes first. */
  race<T>(work: PromiseLike<T>): Promise<T> {
    if (this.#aborted) return Promise.reject(this.#reason);
    // One promise, settled by whichever comes first: cheaper than Promise.race over two.
    return new Promise<T>((resolve, reject) => {
      this.#reject = reject;
      work.then(resolve, reject);
    });
  }
}
