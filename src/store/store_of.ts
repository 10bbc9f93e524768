/**
 * The store behind each `QueueDatabase`, for PrismQ's own code (queues, workers, `prismq/testing`, tests)
 * alone: no public property or export exposes it, so that applications and handlers (whose `ctx.db` is the
 * database) reach it only through `Queue`, `WorkerEngine` and `QueueDatabase`'s own methods.
 *
 * @module
 */
import type { QueueDatabase } from "../database.ts";
import { kindOf } from "../checks.ts";
import { invalidType } from "../errors.ts";
import type { Store } from "./store.ts";

// Kept in the global symbol registry, so that a database made by one copy of PrismQ in a process (two
// packages depending on it, say) is usable by another's queues and workers, as its connections are.
const STORES_KEY = Symbol.for("prismq.stores");
const stores: WeakMap<object, Store> = ((globalThis as Record<symbol, unknown>)[STORES_KEY] ??= new WeakMap<
  object,
  Store
>()) as WeakMap<object, Store>;

/** Records `store` as `db`'s; called once, by `db`'s constructor. */
export function attachStore(db: QueueDatabase, store: Store): void {
  stores.set(db, store);
}

/** Whether `value` is a `QueueDatabase` (of any copy of PrismQ in this process), which has a store. */
export function isQueueDatabase(value: unknown): value is QueueDatabase {
  return typeof value === "object" && value !== null && stores.has(value);
}

/**
 * The store behind `db` (made by any copy of PrismQ in this process).
 *
 * @throws {TypeError} for anything but a `QueueDatabase` (code `INVALID_ARGUMENT`)
 */
export function storeOf(db: QueueDatabase): Store {
  const store = isQueueDatabase(db) ? stores.get(db) : undefined;
  if (store === undefined) throw invalidType(`Expected a QueueDatabase, got ${kindOf(db)}.`);
  return store;
}
