/**
 * Assertions on what an application enqueued, in the spirit of River's `rivertest.RequireInserted` and
 * Oban's `assert_enqueued`. They read the real queue and throw a plain {@link TaskAssertionError}, so they
 * work under any test framework (Deno, `node:test`, Bun, Vitest, ...).
 *
 * @module
 */
import { invalidType, PrismqError } from "../errors.ts";
import type { Queue } from "../queue.ts";
import { isTaskStatus, type Task, TASK_STATUSES, type TaskStatus } from "../task.ts";

/**
 * Which tasks an assertion looks for. Every field given must match; absent fields match anything.
 *
 * @example
 * ```ts
 * import type { EnqueuedFilter } from "prismq/testing";
 * const filter: EnqueuedFilter = {
 *   type: "send_invoice",
 *   payload: { customer: { id: 42 } }, // matches { customer: { id: 42, name: "Ada" }, total: 10 }
 *   status: ["queued", "completed"],
 *   priority: 10,
 * };
 * ```
 */
export interface EnqueuedFilter {
  type?: string | undefined;
  /**
   * A partial payload: objects match when every key given matches (recursively; other keys are ignored),
   * arrays when they have the same length and every element matches, other values when equal (`===`).
   */
  payload?: unknown | undefined;
  /**
   * The statuses to look at: `"queued"` covers tasks due now, scheduled for later and waiting for a
   * retry; `"any"` looks at every task.
   * @default "queued"
   */
  status?: TaskStatus | readonly TaskStatus[] | "any" | undefined;
  priority?: number | undefined;
  /** When the task may run (its `runAfter`), exactly. */
  runAfter?: Date | number | undefined;
  maxAttempts?: number | undefined;
  /** `null` matches tasks without a key. */
  idempotencyKey?: string | null | undefined;
}

/**
 * Anything that has a queue: a {@link Queue}, or a test queue (`{ queue }`).
 *
 * @example
 * ```ts
 * import { Queue, QueueDatabase } from "prismq";
 * import { assertNotEnqueued, type QueueSource } from "prismq/testing";
 * const db = new QueueDatabase(":memory:");
 * await db.initializeSchema();
 * const source: QueueSource = new Queue(db); // the application's own Queue works too
 * await assertNotEnqueued(source, { type: "anything" });
 * await db.close();
 * ```
 */
export type QueueSource = Queue | { readonly queue: Queue };

/**
 * Thrown by {@link assertEnqueued} and {@link assertNotEnqueued} when the queue does not hold what they
 * expect. Its message lists the tasks that were there.
 *
 * @example
 * ```ts
 * import { assertEnqueued, createTestQueue, TaskAssertionError } from "prismq/testing";
 * const testQueue = await createTestQueue();
 * const error = await assertEnqueued(testQueue, { type: "missing" }).catch((e) => e);
 * if (!(error instanceof TaskAssertionError)) throw new Error("expected a TaskAssertionError");
 * await testQueue.close();
 * ```
 */
export class TaskAssertionError extends PrismqError {
  override name = "TaskAssertionError";
  override readonly code = "TASK_ASSERTION_FAILED";
}

/** Most tasks an assertion's message lists. */
const LISTED = 20;
/** Longest payload an assertion's message shows, in characters of JSON. */
const PAYLOAD_SHOWN = 200;
const PAGE = 500;

/**
 * The tasks that match `filter`, oldest first (by id).
 *
 * @param source a Queue, or a test queue
 * @param filter what to look for; by default, every queued task
 *
 * @example
 * ```ts
 * import { createTestQueue, listEnqueued } from "prismq/testing";
 * const testQueue = await createTestQueue();
 * await testQueue.queue.enqueue("email", { to: "ada@example.com" });
 * await testQueue.queue.enqueue("email", { to: "bob@example.com" });
 * const emails = await listEnqueued(testQueue, { type: "email" });
 * if (emails.length !== 2) throw new Error("expected two emails");
 * await testQueue.close();
 * ```
 */
export async function listEnqueued(source: QueueSource, filter: EnqueuedFilter = {}): Promise<Task[]> {
  const queue = queueOf(source);
  const statuses = statusesOf(filter);
  const tasks = await tasksWith(queue, statuses, filter.type);
  return tasks.filter((task) => matches(task, filter));
}

/**
 * Asserts that a task matching `filter` is in the queue (by default, queued: due now or later) and returns
 * it; when several match, the oldest.
 *
 * @param source a Queue, or a test queue
 * @param filter what to look for: `type`, a partial `payload`, `status`, `priority`, `runAfter`, ...
 * @returns the matching task
 * @throws {TaskAssertionError} when none matches; the message lists the tasks with the statuses looked at
 *
 * @example
 * ```ts
 * import { assertEnqueued, createTestQueue } from "prismq/testing";
 * const testQueue = await createTestQueue();
 * await testQueue.queue.enqueue("send_welcome", { email: "ada@example.com", locale: "en" }, { delayMs: 60_000 });
 * const task = await assertEnqueued(testQueue, {
 *   type: "send_welcome",
 *   payload: { email: "ada@example.com" }, // the other keys are not compared
 *   runAfter: testQueue.clock.now() + 60_000,
 * });
 * console.log(task.id);
 * await testQueue.close();
 * ```
 */
export async function assertEnqueued(source: QueueSource, filter: EnqueuedFilter): Promise<Task> {
  const queue = queueOf(source);
  const statuses = statusesOf(filter);
  const candidates = await tasksWith(queue, statuses);
  const found = candidates.find((task) => matches(task, filter));
  if (found) return found;
  const looked = describeStatuses(statuses);
  throw new TaskAssertionError(
    `Expected ${article(looked)} ${looked} task matching ${describeFilter(filter)}, but none matches. ` +
      (await listing(queue, statuses, candidates)),
  );
}

/**
 * Asserts that no task matching `filter` is in the queue (by default, queued: due now or later).
 *
 * @param source a Queue, or a test queue
 * @param filter what must not be there
 * @throws {TaskAssertionError} when some task matches; the message lists those that do
 *
 * @example
 * ```ts
 * import { assertNotEnqueued, createTestQueue } from "prismq/testing";
 * const testQueue = await createTestQueue();
 * await testQueue.queue.enqueue("send_welcome", { email: "ada@example.com" });
 * await assertNotEnqueued(testQueue, { type: "send_welcome", payload: { email: "bob@example.com" } });
 * await testQueue.close();
 * ```
 */
export async function assertNotEnqueued(source: QueueSource, filter: EnqueuedFilter): Promise<void> {
  const queue = queueOf(source);
  const statuses = statusesOf(filter);
  const found = (await tasksWith(queue, statuses, filter.type)).filter((task) => matches(task, filter));
  if (found.length === 0) return;
  const looked = describeStatuses(statuses);
  throw new TaskAssertionError(
    `Expected no ${looked} task matching ${describeFilter(filter)}, but ${found.length} ` +
      `${found.length === 1 ? "matches" : "match"}:\n${lines(found)}`,
  );
}

/**
 * Whether `actual` matches the partial `expected`: objects by the keys given, arrays element by element,
 * anything else by `===`.
 */
function matchesPartially(expected: unknown, actual: unknown): boolean {
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length &&
      expected.every((item, i) => matchesPartially(item, actual[i]));
  }
  if (isPlainObject(expected)) {
    if (!isPlainObject(actual)) return false;
    return Object.entries(expected).every(([key, value]) =>
      value === undefined
        ? actual[key] === undefined
        : Object.hasOwn(actual, key) && matchesPartially(value, actual[key])
    );
  }
  return expected === actual;
}

function matches(task: Task, filter: EnqueuedFilter): boolean {
  if (filter.type !== undefined && task.type !== filter.type) return false;
  if (filter.payload !== undefined && !matchesPartially(filter.payload, task.payload)) return false;
  if (filter.priority !== undefined && task.priority !== filter.priority) return false;
  if (filter.maxAttempts !== undefined && task.maxAttempts !== filter.maxAttempts) return false;
  if (filter.idempotencyKey !== undefined && task.idempotencyKey !== filter.idempotencyKey) return false;
  if (filter.runAfter !== undefined && task.runAfter !== epochOf(filter.runAfter)) return false;
  return true;
}

function queueOf(source: QueueSource): Queue {
  const queue = source && "queue" in source ? source.queue : source;
  if (!queue || typeof (queue as Queue).list !== "function") {
    throw invalidType("Pass a Queue, or a test queue from createTestQueue(), as the first argument.");
  }
  return queue as Queue;
}

function statusesOf(filter: EnqueuedFilter): readonly TaskStatus[] {
  if (typeof filter !== "object" || filter === null) {
    throw invalidType("Pass a filter object, such as { type: 'send_email' }.");
  }
  const { status = "queued" } = filter;
  if (status === "any") return TASK_STATUSES;
  const statuses = typeof status === "string" ? [status] : status;
  for (const s of statuses) {
    if (!isTaskStatus(s)) {
      throw invalidType(
        `Unknown status ${JSON.stringify(s)}. Use queued, running, completed, failed, cancelled or "any".`,
      );
    }
  }
  if (filter.runAfter !== undefined && !Number.isFinite(epochOf(filter.runAfter))) {
    throw invalidType(
      `runAfter must be a valid Date or epoch milliseconds, got ${String(filter.runAfter)}.`,
    );
  }
  return statuses;
}

/** Every task with one of `statuses` (and of `type`, when given), oldest first. */
async function tasksWith(queue: Queue, statuses: readonly TaskStatus[], type?: string): Promise<Task[]> {
  const tasks: Task[] = [];
  for (const status of new Set(statuses)) {
    for (let offset = 0;; offset += PAGE) {
      const page = await queue.list({ status, type, limit: PAGE, offset });
      tasks.push(...page);
      if (page.length < PAGE) break;
    }
  }
  return tasks.sort((a, b) => a.id - b.id);
}

/** What the queue holds, for a failed assertion's message. */
async function listing(queue: Queue, statuses: readonly TaskStatus[], candidates: Task[]): Promise<string> {
  const looked = describeStatuses(statuses);
  if (candidates.length > 0) {
    return `${capitalize(looked)} tasks (${candidates.length}):\n${lines(candidates)}`;
  }
  const others = statuses.length === TASK_STATUSES.length ? 0 : (await queue.stats()).counts;
  const elsewhere = others === 0
    ? []
    : TASK_STATUSES.filter((s) => !statuses.includes(s) && others[s] > 0).map((s) => `${others[s]} ${s}`);
  return `There are no ${looked} tasks` +
    (elsewhere.length > 0
      ? `; other tasks: ${elsewhere.join(", ")} (pass \`status\` to look at them).`
      : ".");
}

function lines(tasks: readonly Task[]): string {
  const shown = tasks.slice(0, LISTED).map((task) => `  ${describeTask(task)}`);
  if (tasks.length > LISTED) shown.push(`  … and ${tasks.length - LISTED} more`);
  return shown.join("\n");
}

function describeTask(task: Task): string {
  let payload = JSON.stringify(task.payload) ?? "undefined";
  if (payload.length > PAYLOAD_SHOWN) payload = `${payload.slice(0, PAYLOAD_SHOWN)}…`;
  const details = [
    task.status,
    `priority ${task.priority}`,
    `runAfter ${new Date(task.runAfter).toISOString()}`,
    `attempts ${task.attempts}/${task.maxAttempts}`,
  ];
  if (task.idempotencyKey !== null) details.push(`idempotencyKey ${JSON.stringify(task.idempotencyKey)}`);
  return `#${task.id} ${task.type} ${payload} (${details.join(", ")})`;
}

function describeFilter(filter: EnqueuedFilter): string {
  const shown: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(filter)) {
    if (key === "status" || value === undefined) continue;
    shown[key] = key === "runAfter" ? new Date(epochOf(value as Date | number)).toISOString() : value;
  }
  return JSON.stringify(shown);
}

function describeStatuses(statuses: readonly TaskStatus[]): string {
  if (statuses.length === TASK_STATUSES.length) return "stored";
  return [...new Set(statuses)].join(" or ");
}

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? "an" : "a";
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function epochOf(value: Date | number): number {
  return value instanceof Date ? value.getTime() : value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
