/**
 * What an insert of many tasks did with each, the same on every store: from the rows it created and the
 * tasks found holding the keys of the others, which task was created and which met a key already held
 * (its idempotency key, or its `unique` key) and by whom.
 *
 * @module
 */
import { DatabaseError } from "../errors.ts";
import type { Task } from "../task.ts";
import type { InsertedTask, MatchedKey, NewTask } from "./types.ts";

/** A row an insert created: its id and its keys. */
export interface CreatedRow {
  id: number;
  idempotencyKey: string | null;
  uniqueKey: string | null;
}

/** A task found holding a key, and which kind of key it holds. */
export interface KeyHolder {
  task: Task;
  matched: MatchedKey;
}

/** Whether a task has a key an insert can collide on. */
export function hasKey(task: NewTask): boolean {
  return task.idempotencyKey !== null || task.uniqueKey !== null;
}

/** The distinct `unique` keys of `tasks`. */
export function uniqueKeysOf(tasks: readonly NewTask[]): string[] {
  return [...new Set(tasks.flatMap((task) => task.uniqueKey ?? []))];
}

/**
 * Which created row is which task's. A created row with an idempotency key is the first task with that key
 * (no two created rows share one); one without, but with a `unique` key, the first task with that key and
 * no idempotency key (a second such task would have collided with the first); the rest, without keys, in
 * id order, which is the order given. Returns the id of each task that was created, or undefined.
 */
export function creatorsOf(
  tasks: readonly NewTask[],
  created: readonly CreatedRow[],
): (number | undefined)[] {
  const byIdempotencyKey = new Map<string, number>();
  const byUniqueKey = new Map<string, number>();
  const unkeyed: number[] = [];
  for (const row of created) {
    if (row.idempotencyKey !== null) byIdempotencyKey.set(row.idempotencyKey, row.id);
    else if (row.uniqueKey !== null) byUniqueKey.set(row.uniqueKey, row.id);
    else unkeyed.push(row.id);
  }
  // Ids grow in insertion order; RETURNING gives the rows in no promised order.
  unkeyed.sort((a, b) => a - b);
  let nextUnkeyed = 0;
  return tasks.map((task) => {
    if (!hasKey(task)) return unkeyed[nextUnkeyed++];
    const [map, key] = task.idempotencyKey !== null
      ? [byIdempotencyKey, task.idempotencyKey]
      : [byUniqueKey, task.uniqueKey!];
    const id = map.get(key);
    if (id !== undefined) map.delete(key);
    return id;
  });
}

/** The keys whose holders a lookup must find: those of the tasks that were not created. */
export function keysToFind(
  tasks: readonly NewTask[],
  creators: readonly (number | undefined)[],
): { idempotencyKeys: string[]; uniqueKeys: string[] } {
  const idempotencyKeys = new Set<string>();
  const uniqueKeys = new Set<string>();
  tasks.forEach((task, i) => {
    if (creators[i] !== undefined) return;
    if (task.idempotencyKey !== null) idempotencyKeys.add(task.idempotencyKey);
    if (task.uniqueKey !== null) uniqueKeys.add(task.uniqueKey);
  });
  return { idempotencyKeys: [...idempotencyKeys], uniqueKeys: [...uniqueKeys] };
}

/**
 * Each task's outcome: created, or the task that holds its idempotency key (looked at first: it is held for
 * good), else its `unique` key. Undefined for a task that was not created and whose key nobody holds any
 * more: its holder finished or was purged after the insert met it, and the caller may insert it again.
 */
export function outcomesOf(
  tasks: readonly NewTask[],
  creators: readonly (number | undefined)[],
  holders: readonly KeyHolder[],
): (InsertedTask | undefined)[] {
  const byIdempotencyKey = new Map<string, Task>();
  const byUniqueKey = new Map<string, Task>();
  for (const { task, matched } of holders) {
    if (matched === "idempotencyKey") byIdempotencyKey.set(task.idempotencyKey!, task);
    else byUniqueKey.set(task.uniqueKey!, task);
  }
  return tasks.map((task, i): InsertedTask | undefined => {
    const id = creators[i];
    if (id !== undefined) return { id, created: true };
    const byKey = task.idempotencyKey === null ? undefined : byIdempotencyKey.get(task.idempotencyKey);
    if (byKey) return { id: byKey.id, created: false, existing: byKey, matchedKey: "idempotencyKey" };
    const byUnique = task.uniqueKey === null ? undefined : byUniqueKey.get(task.uniqueKey);
    if (byUnique) return { id: byUnique.id, created: false, existing: byUnique, matchedKey: "unique" };
    return undefined;
  });
}

/** The error for a task whose key's holder kept going away while it was inserted. */
export function holderGone(task: NewTask): Error {
  const key = task.idempotencyKey !== null
    ? `idempotency key ${JSON.stringify(task.idempotencyKey)}`
    : `unique key ${JSON.stringify(task.uniqueKey)}`;
  // A DatabaseError (503 over HTTP): nothing was written, and trying again is the fix.
  return new DatabaseError(
    `The task holding ${key} finished or was deleted while this enqueue ran, three times. Enqueue it again.`,
  );
}
