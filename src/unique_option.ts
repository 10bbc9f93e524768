/**
 * The `unique` option of an enqueue (and of handler and schedule definitions): a key held while the task is
 * active, or for a window from its creation; checked here, as the two columns it sets.
 *
 * @module
 */
import { duration, wellFormed } from "./checks.ts";
import { invalidType } from "./errors.ts";

/** The longest key, in characters, as for idempotency keys. */
const MAX_KEY_LENGTH = 1024;

/**
 * A `unique` key and its scope: exactly one of `while: "active"` and `forMs`.
 *
 * - `{ key, while: "active" }`: held while the task is `waiting`, `queued` or `running` (retries and snoozes included);
 *   once it completes, fails or is cancelled, the next enqueue of the key creates a new task.
 * - `{ key, forMs }`: held for `forMs` milliseconds from the task's creation, whatever its status: at most one
 *   task per key per window, the window starting at the creation of the task that holds it.
 *
 * Keys are one namespace across types and queues (put the type in the key to keep them apart), and apart
 * from `idempotencyKey`s. The holder's own scope decides how long it holds the key. Retrying a finished
 * task (`retry`, `retryFailed`) with a `while: "active"` key that another task holds now is refused
 * (`UniqueKeyHeldError`); a window key never stops a retry: the window counts enqueues, not attempts.
 *
 * @example At most one digest per user per ten minutes
 * ```ts
 * import { Queue, QueueDatabase } from "prismq";
 * const db = new QueueDatabase(":memory:");
 * await db.initializeSchema();
 * const queue = new Queue(db);
 * const [first, second] = await queue.enqueueManyDetailed([
 *   { type: "digest", payload: { user: 7 }, unique: { key: "digest:7", forMs: 600_000 } },
 *   { type: "digest", payload: { user: 7 }, unique: { key: "digest:7", forMs: 600_000 } },
 * ]);
 * first!.created; // true
 * second!.created; // false
 * second!.matchedKey; // "unique"
 * await db.close();
 * ```
 */
export type UniqueOptions =
  | {
    /** 1 to 1024 characters of well-formed Unicode. */
    key: string;
    /** Held while the task is waiting, queued or running. */
    while: "active";
    forMs?: undefined;
  }
  | {
    /** 1 to 1024 characters of well-formed Unicode. */
    key: string;
    /** Held for this many milliseconds from the task's creation: a whole number from 1 to 100 years. */
    forMs: number;
    while?: undefined;
  };

/**
 * The `unique` option checked, as the two columns it sets.
 *
 * @throws {TypeError | RangeError} naming what is wrong and the two forms it can take
 */
export function uniqueColumns(unique: unknown): { uniqueKey: string | null; uniqueForMs: number | null } {
  if (unique === undefined || unique === null) return { uniqueKey: null, uniqueForMs: null };
  const forms = `Give unique as { key, while: "active" } or { key, forMs }.`;
  if (typeof unique !== "object") throw invalidType(`unique must be an object. ${forms}`);
  const { key, while: scope, forMs, ...rest } = unique as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) {
    throw invalidType(`unique has no option ${JSON.stringify(unknown[0])}. ${forms}`);
  }
  if (typeof key !== "string" || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw invalidType(`unique.key must be a string of 1 to ${MAX_KEY_LENGTH} characters. ${forms}`);
  }
  wellFormed("unique.key", key);
  if (scope !== undefined && forMs !== undefined) {
    throw invalidType(`unique takes while: "active" or forMs, not both. ${forms}`);
  }
  if (scope === undefined && forMs === undefined) {
    throw invalidType(`unique needs a scope: while: "active" or forMs. ${forms}`);
  }
  if (scope !== undefined) {
    if (scope !== "active") {
      throw invalidType(`unique.while must be "active", got ${JSON.stringify(scope)}. ${forms}`);
    }
    return { uniqueKey: key, uniqueForMs: null };
  }
  return { uniqueKey: key, uniqueForMs: duration("unique.forMs", forMs, 1) };
}
