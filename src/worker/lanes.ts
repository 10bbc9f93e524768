/**
 * Lanes: a worker whose `queues` option gives each queue its own concurrency (`{ emails: 4, reports: 1 }`)
 * runs one engine per queue, so that a busy queue can never take another's slots. Each lane is a worker of
 * its own (`<workerId>/<queue>`: its row, its leases, its claims); this runs them together, as one.
 *
 * @module
 */
import type { TaskHandler } from "../handler.ts";
import type { RunSummary } from "./events.ts";
import type { RunLoopOptions } from "./loop.ts";

/** What a lane must do: the public side of a `WorkerEngine`. */
export interface Lane {
  readonly runningCount: number;
  claimAndProcess(taskHandler?: TaskHandler): Promise<boolean>;
  runLoop(options?: RunLoopOptions): Promise<RunSummary>;
  stop(options?: { graceMs?: number }): Promise<void>;
}

export class Lanes {
  readonly #lanes: readonly Lane[];

  constructor(lanes: readonly Lane[]) {
    this.#lanes = lanes;
  }

  get runningCount(): number {
    return this.#lanes.reduce((sum, lane) => sum + lane.runningCount, 0);
  }

  /** Claims one task from the first lane that has one, in the order the queues were given. */
  async claimAndProcess(taskHandler?: TaskHandler): Promise<boolean> {
    for (const lane of this.#lanes) {
      if (await lane.claimAndProcess(taskHandler)) return true;
    }
    return false;
  }

  /**
   * Runs every lane's loop until all have ended; one that fails stops the others, and its error is thrown
   * once they have handed back what they held. The summary adds the lanes' up.
   */
  async runLoop(options: RunLoopOptions = {}): Promise<RunSummary> {
    const stopAll = new AbortController();
    const onAbort = () => stopAll.abort();
    if (options.signal?.aborted) stopAll.abort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const results = await Promise.allSettled(
        this.#lanes.map((lane) =>
          lane.runLoop({ ...options, signal: stopAll.signal }).catch((error) => {
            stopAll.abort();
            throw error;
          })
        ),
      );
      const failed = results.find((result) => result.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      return mergeSummaries(results.map((result) => (result as PromiseFulfilledResult<RunSummary>).value));
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  async stop(options: { graceMs?: number } = {}): Promise<void> {
    const results = await Promise.allSettled(this.#lanes.map((lane) => lane.stop(options)));
    const failed = results.find((result) => result.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
}

/** The lanes' summaries added up; tasks waiting for later, and the soonest of them, across lanes. */
function mergeSummaries(summaries: readonly RunSummary[]): RunSummary {
  const total: RunSummary = {
    claimed: 0,
    completed: 0,
    retried: 0,
    failed: 0,
    cancelled: 0,
    leaseLost: 0,
    released: 0,
    snoozed: 0,
  };
  for (const summary of summaries) {
    total.claimed += summary.claimed;
    total.completed += summary.completed;
    total.retried += summary.retried;
    total.failed += summary.failed;
    total.cancelled += summary.cancelled;
    total.leaseLost += summary.leaseLost;
    total.released += summary.released;
    total.snoozed += summary.snoozed;
    if (summary.waiting) {
      const next = [total.waiting?.nextRunAfter, summary.waiting.nextRunAfter]
        .filter((at): at is number => typeof at === "number");
      total.waiting = {
        count: (total.waiting?.count ?? 0) + summary.waiting.count,
        nextRunAfter: next.length > 0 ? Math.min(...next) : null,
      };
    }
  }
  return total;
}
