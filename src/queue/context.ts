/**
 * What the parts of one `Queue` share: its database, store, registry, clock and payload limit, set once by
 * the constructor from its checked options; and the helpers more than one part needs.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import { DatabaseClock } from "../database_clock.ts";
import type { QueueDatabase } from "../database.ts";
import { wholeNumber } from "../checks.ts";
import type { TaskHandlerRegistry } from "../registry.ts";
import type { Store } from "../store/store.ts";

/** A `Queue`'s state, read by the files its methods delegate to. */
export interface QueueContext {
  readonly db: QueueDatabase;
  readonly store: Store;
  readonly registry: TaskHandlerRegistry | undefined;
  readonly clock: Clock;
  readonly maxPayloadBytes: number;
}

/** The first measurement of a server clock's offset, before the first due time is computed on it. */
export function clockSync(context: QueueContext): Promise<void> | undefined {
  const clock = context.clock;
  return clock instanceof DatabaseClock && !clock.synced ? clock.sync() : undefined;
}

/** Calls `write` with the time now, on a server clock once its offset has been measured. */
export function atNow<T>(context: QueueContext, write: (now: number) => Promise<T>): Promise<T> {
  const syncing = clockSync(context);
  return syncing ? syncing.then(() => write(context.clock.now())) : write(context.clock.now());
}

export function taskId(id: number): number {
  return wholeNumber("A task id", id, 1);
}
