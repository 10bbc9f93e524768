/**
 * `Queue`'s enqueue forms: one task (the hot path), many in one transaction, ids only, inside an
 * application's transaction (`tx`), synchronous; and the checks a task passes before it is written.
 *
 * @module
 */
import { invalidType, TaskHandlerNotRegisteredError } from "../errors.ts";
import { wellFormed } from "../checks.ts";
import { assertTaskType, parsePayloadNow } from "../handler.ts";
import type { InsertedTask, MatchedKey, NewTask } from "../store/store.ts";
import {
  type EnqueuedTask,
  enqueuedTask,
  type EnqueueItem,
  type EnqueueOptions,
  type EnqueueTransaction,
  newTask,
  payloadJson,
  uniqueColumns,
  type WriteOptions,
} from "../enqueue_item.ts";
import type { EnqueueOutcome } from "../queue.ts";
import { clockSync, type QueueContext } from "./context.ts";

/** {@link Queue.enqueue}'s work. */
export async function enqueue(
  context: QueueContext,
  type: string,
  payload: unknown,
  options: EnqueueOptions & WriteOptions,
): Promise<EnqueuedTask> {
  // enqueueMany's work for one task, without its arrays and copies: the single enqueue is the hot path.
  options ??= {};
  if (typeof options !== "object") throw invalidType("The options must be an object.");
  const syncing = clockSync(context);
  if (syncing) await syncing;
  const now = context.clock.now();
  const prepared = prepareOne(context, type, payload, options, now);
  const row = prepared instanceof Promise ? await prepared : prepared;
  if (options.tx !== undefined) {
    const [inserted] = await write(context, [row], now, options.tx);
    return enqueuedTask(inserted!, row, now);
  }
  const pending = context.store.taskInsertOne(row, now);
  const inserted = pending instanceof Promise ? await pending : pending;
  if (inserted.created) context.db.notifyTasksAvailable();
  return enqueuedTask(inserted, row, now);
}

/** {@link Queue.enqueueManyDetailed}'s work. */
export async function enqueueManyDetailed(
  context: QueueContext,
  items: readonly EnqueueItem[],
  options: WriteOptions,
): Promise<EnqueueOutcome[]> {
  const syncing = clockSync(context);
  if (syncing) await syncing;
  const now = context.clock.now();
  const rows = await prepareAll(context, items, now);
  return created(rows, now, await write(context, rows, now, options.tx));
}

/** {@link Queue.enqueueManyIds}'s work. */
export async function enqueueManyIds(
  context: QueueContext,
  items: readonly EnqueueItem[],
  options: WriteOptions,
): Promise<{ id: number; created: boolean; matchedKey?: MatchedKey | undefined }[]> {
  const syncing = clockSync(context);
  if (syncing) await syncing;
  const now = context.clock.now();
  const rows = await prepareAll(context, items, now);
  const inserted = await write(context, rows, now, options.tx);
  return inserted.map(({ id, created, matchedKey }) =>
    matchedKey === undefined ? { id, created } : { id, created, matchedKey }
  );
}

/** {@link Queue.enqueueManySync}'s work. */
export function enqueueManySync(
  context: QueueContext,
  items: readonly EnqueueItem[],
  options: { tx: EnqueueTransaction },
): EnqueuedTask[] {
  if (options?.tx === undefined) {
    throw invalidType("enqueueSync and enqueueManySync write through a transaction: pass { tx }.");
  }
  const now = context.clock.now();
  const rows = prepareAll(context, items, now);
  if (rows instanceof Promise) {
    rows.catch(() => {});
    throw invalidType(
      "A payload schema of these task types validates asynchronously, which enqueueSync cannot wait for. " +
        "Use await queue.enqueue(…, { tx }) in an asynchronous transaction.",
    );
  }
  const inserted = context.store.taskInsertManyWithin(options.tx, rows, now, true);
  if (inserted instanceof Promise) throw invalidType("The transaction answered asynchronously.");
  return created(rows, now, inserted).map((result) => result.task);
}

/** {@link Queue.validate}'s work. */
export async function validate(context: QueueContext, item: EnqueueItem): Promise<void> {
  await prepare(context, item, context.clock.now());
}

/** Writes validated rows: through `tx` when given, else in a transaction of their own. */
async function write(
  context: QueueContext,
  rows: NewTask[],
  now: number,
  tx: EnqueueTransaction | undefined,
): Promise<InsertedTask[]> {
  if (tx !== undefined) return await context.store.taskInsertManyWithin(tx, rows, now, false);
  const inserted = await context.store.taskInsertMany(rows, now);
  if (inserted.some((result) => result.created)) context.db.notifyTasksAvailable();
  return inserted;
}

function created(rows: NewTask[], now: number, inserted: InsertedTask[]): EnqueueOutcome[] {
  return inserted.map((result, i) => {
    const task = enqueuedTask(result, rows[i]!, now);
    return result.matchedKey === undefined
      ? { task, created: result.created }
      : { task, created: result.created, matchedKey: result.matchedKey };
  });
}

/**
 * Validates every item and gives the rows to insert; a promise only when a payload schema is asynchronous.
 * An error names the item it is about when there are several.
 */
function prepareAll(
  context: QueueContext,
  items: readonly EnqueueItem[],
  now: number,
): NewTask[] | Promise<NewTask[]> {
  const label = (index: number, error: unknown) => {
    if (items.length > 1 && error instanceof Error) error.message = `Task ${index + 1}: ${error.message}`;
    return error;
  };
  const rows: (NewTask | Promise<NewTask>)[] = [];
  let pending = false;
  for (const [index, item] of items.entries()) {
    try {
      const row = prepare(context, item, now);
      if (row instanceof Promise) {
        pending = true;
        rows.push(row.catch((error) => Promise.reject(label(index, error))));
      } else rows.push(row);
    } catch (error) {
      for (const row of rows) if (row instanceof Promise) row.catch(() => {});
      throw label(index, error);
    }
  }
  return pending ? Promise.all(rows) : rows as NewTask[];
}

/** The row to insert for `item`; a promise only when its payload schema is asynchronous. */
function prepare(context: QueueContext, item: EnqueueItem, now: number): NewTask | Promise<NewTask> {
  if (typeof item !== "object" || item === null) {
    throw invalidType("Each task must be an object with a type.");
  }
  const { type, payload = {} } = item;
  if ("tx" in item) {
    throw invalidType("tx is not an option of one task: pass it as enqueueMany(items, { tx }).");
  }
  return prepareOne(context, type, payload, item, now);
}

/** {@link prepare} for a type, a payload and the options of one task. */
function prepareOne(
  context: QueueContext,
  type: string,
  payload: unknown,
  item: EnqueueOptions,
  now: number,
): NewTask | Promise<NewTask> {
  assertTaskType(type);
  wellFormed(`The task type ${JSON.stringify(type)}`, type);
  const info = context.registry?.getHandlerInfo(type);
  if (context.registry && !info) {
    throw new TaskHandlerNotRegisteredError(type, context.registry.getRegisteredTypes());
  }
  const row = newTask(
    type,
    payloadJson(type, payload, context.maxPayloadBytes),
    item,
    now,
    info?.maxAttempts,
    info?.queue,
  );
  // The schema last: no point validating, field by field, a payload that is too large to store anyway.
  const checked = info?.schema && parsePayloadNow(type, info.schema, payload);
  const keyOf = item.unique === undefined ? info?.unique : undefined;
  if (keyOf === undefined) return checked instanceof Promise ? checked.then(() => row) : row;
  // The handler's default key, from the payload as validated (as given, when the handler has no schema).
  const withKey = (output: unknown) =>
    Object.assign(row, handlerUnique(type, keyOf(info?.schema ? output : payload)));
  return checked instanceof Promise ? checked.then(withKey) : withKey(checked);
}

/** The columns of the `unique` a handler's default gave, checked; a wrong one names the handler. */
function handlerUnique(type: string, unique: unknown): Pick<NewTask, "uniqueKey" | "uniqueForMs"> {
  try {
    return uniqueColumns(unique);
  } catch (error) {
    if (error instanceof Error) {
      error.message = `The unique of handler '${type}' gave a wrong value: ${error.message}`;
    }
    throw error;
  }
}
