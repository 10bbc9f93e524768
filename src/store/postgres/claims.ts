/**
 * The PostgreSQL store's hot path: claims, the grouped writes of outcomes, and both in one round trip. A
 * claim from limited queues locks their rows and claims in one statement (`merged_claim.ts`); any other
 * claim is one UPDATE (`claim.ts`, or the merged claim's free part when it must pass queues by). Every call
 * is made again after a lost connection: a write under a fence that held once holds no more, so an outcome
 * made again is checked against what its row holds (`#ownRecorded`); a claim whose answer was lost leaves
 * its tasks to be reaped when their leases expire.
 *
 * @module
 */
import type { ClaimParams, LeasedTask, Progress, Recorded } from "../store.ts";
import { type HeldQueueNames, limitedScope } from "../limited_claim.ts";
import type { PgConnection } from "./connection.ts";
import { claimStatement, leasedFrom } from "./queries/claim.ts";
import { lockLimitedStatement, mergedClaimStatement, startByOf } from "./queries/merged_claim.ts";
import { progressStatements, recordedFrom } from "./queries/outcomes.ts";
import { ownOutcomes } from "./queries/recorded.ts";
import type { Statement } from "./sql.ts";

/** The limited queues a claim must take from under their limits, and whether from those alone. */
type LimitedScope = { queues: readonly string[]; skipFree: boolean };

/** A call made again after a lost connection, given how late it is (see the store's `#again`). */
type Again = <T>(call: (late: number) => Promise<T>) => Promise<T>;

export class PgClaims {
  readonly #conn: PgConnection;
  readonly #again: Again;
  readonly #heldNames: HeldQueueNames;

  /**
   * @param conn the store's pool
   * @param again the store's way of making a call again after a lost connection
   * @param heldNames the paused and limited queues, as the store last read them
   */
  constructor(conn: PgConnection, again: Again, heldNames: HeldQueueNames) {
    this.#conn = conn;
    this.#again = again;
    this.#heldNames = heldNames;
  }

  async claim(params: ClaimParams): Promise<LeasedTask[]> {
    const { held, limited } = await this.#held(params);
    if (limited) return (await this.#claimLimited(null, params, limited, held)).leased;
    return this.#again(async (late) => {
      // The claim's own times: what it set is not read back.
      const at = late === 0 ? params : { ...params, now: params.now + late };
      return leasedFrom(await this.#conn.rows(freeClaim(at, held)), at);
    });
  }

  /**
   * The held queues, and the limited queues a claim of `params` must take from under their limits (and
   * whether from those alone), as the store last read them (see `#heldNames`).
   */
  async #held(params: ClaimParams): Promise<{ held: readonly string[]; limited: LimitedScope | undefined }> {
    const pending = this.#heldNames.get();
    const names = pending instanceof Promise ? await pending : pending;
    const scope = limitedScope(params, names.limited);
    return { held: names.held, limited: scope.limited ? scope : undefined };
  }

  /**
   * A record's statements, then the lock of the limited queues' rows and the claim from free and limited
   * queues (`merged_claim.ts`), in one transaction and one round trip; made again after a lost connection,
   * as every claim is.
   */
  #claimLimited(
    progress: Progress | null,
    params: ClaimParams,
    limited: LimitedScope,
    held: readonly string[],
  ): Promise<{ results: Record<string, unknown>[][]; leased: LeasedTask[]; tried: number[] }> {
    const tried: number[] = [];
    return this.#again(async (late) => {
      const at = late === 0 ? params : { ...params, now: params.now + late };
      tried.push(at.now);
      const results = await this.#conn.batch([
        ...(progress ? progressStatements(progress, at.now) : []),
        lockLimitedStatement(limited.queues),
        mergedClaimStatement(at, limited.queues, !limited.skipFree, held),
      ]);
      const rows = results.pop()!;
      results.pop();
      return { results, leased: startByOf(leasedFrom(rows, at), rows), tried };
    });
  }

  async record(progress: Progress, now: number): Promise<Recorded> {
    if (progress.starts.length === 0 && progress.finishes.length === 0) {
      return { started: new Set(), finished: new Set() };
    }
    const tried: number[] = [];
    const results = await this.#again((late) => {
      tried.push(now + late);
      return this.#conn.batch(progressStatements(progress, now + late));
    });
    return await this.#ownRecorded(progress, recordedFrom(progress, results), tried);
  }

  /** {@link record} then {@link claim}, in one transaction and one round trip. */
  async recordAndClaim(
    progress: Progress,
    params: ClaimParams,
  ): Promise<Recorded & { leased: LeasedTask[] }> {
    if (progress.starts.length === 0 && progress.finishes.length === 0) {
      return { started: new Set(), finished: new Set(), leased: await this.claim(params) };
    }
    const { held, limited } = await this.#held(params);
    if (limited) {
      const { results, leased, tried } = await this.#claimLimited(progress, params, limited, held);
      return { ...await this.#ownRecorded(progress, recordedFrom(progress, results), tried), leased };
    }
    const tried: number[] = [];
    let at = params;
    const results = await this.#again((late) => {
      at = late === 0 ? params : { ...params, now: params.now + late };
      tried.push(at.now);
      return this.#conn.batch([...progressStatements(progress, at.now), freeClaim(at, held)]);
    });
    const claimed = results.pop()!;
    const recorded = await this.#ownRecorded(progress, recordedFrom(progress, results), tried);
    return { ...recorded, leased: leasedFrom(claimed, at) };
  }

  /**
   * `recorded`, with the outcomes an earlier try of a call made again (`tried` holds the times of its tries)
   * had written: the last try found their leases ended by it (see `queries/recorded.ts`).
   */
  async #ownRecorded(progress: Progress, recorded: Recorded, tried: readonly number[]): Promise<Recorded> {
    if (tried.length === 1) return recorded;
    const unfenced = progress.finishes.filter((finish) => !recorded.finished.has(finish.id));
    const own = await this.#again(() => ownOutcomes(this.#conn, unfenced, tried));
    if (own.size === 0) return recorded;
    const finished = new Set([...recorded.finished, ...own]);
    const started = new Set(recorded.started);
    // A start written through its task's outcome held exactly when the outcome did.
    const finishing = new Set(progress.finishes.filter((f) => own.has(f.id)).map((f) => f.leaseToken));
    for (const start of progress.starts) if (finishing.has(start.leaseToken)) started.add(start.id);
    return { started, finished };
  }
}

/**
 * The claim of a worker that serves no limited queue. By priority, one that names its queues, or that must
 * pass held ones by, reads each queue's best tasks from the index led by the queue (see `merged_claim.ts`);
 * otherwise it walks the priority index.
 */
function freeClaim(params: ClaimParams, held: readonly string[]): Statement {
  if (params.strategy === "priority" && (params.queues !== undefined || held.length > 0)) {
    return mergedClaimStatement(params, [], true, held);
  }
  return claimStatement(params, held);
}
