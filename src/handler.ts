/**
 * Handlers: the function a task's type maps to, and `defineHandler()`, which ties a type to a valibot
 * schema so that the payload a handler receives is validated and typed.
 *
 * @module
 */
import * as v from "valibot";
import { wholeNumber } from "./checks.ts";
import { queueName } from "./queue_name.ts";
import { invalidType, PayloadValidationError } from "./errors.ts";
import type { QueueDatabase } from "./database.ts";
import type { LogLevel } from "./store/store.ts";
import { retryOverrides, type RetryPolicy } from "./retry.ts";
import type { Task } from "./task.ts";
import type { UniqueOptions } from "./enqueue_item.ts";

/** What a running handler gets besides its task. */
export interface HandlerContext {
  /**
   * Aborts when the handler should stop: the task timed out, was cancelled, lost its lease, or the worker is
   * shutting down and the grace period ran out. `signal.reason` says which.
   */
  readonly signal: AbortSignal;
  /** Extends the task's lease now. Throws `LeaseLostError` when the worker no longer holds the task. */
  heartbeat(): Promise<void>;
  /** Appends a line to the task's log (`prismq show <id>`). */
  log(level: LogLevel, message: string, details?: unknown): Promise<void>;
  /** The worker running the task. */
  readonly workerId: string;
  /** The database the task came from: for follow-up tasks (`new Queue(ctx.db)`) or maintenance. */
  readonly db: QueueDatabase;
  /** This attempt's number, from 1. */
  readonly attempt: number;
  /**
   * Records how far the handler has got: any JSON value (`{ done: 40, of: 100 }`), replacing the last,
   * shown by `prismq show` and `queue.get(id)`. Written only while the worker holds the task's lease
   * (throws `LeaseLostError` otherwise); calls made while one is being written are coalesced, so that only
   * the latest is written next. Refuses, with a TypeError, a value that cannot be written as JSON or is
   * larger than the worker's `maxResultBytes`.
   */
  progress(value: unknown): Promise<void>;
}

/** A function that processes one task. It may be async; a thrown error or a rejection fails the attempt. */
// deno-lint-ignore no-explicit-any
export type TaskHandler<Payload = any> = (task: Task<Payload>, ctx: HandlerContext) => unknown;

/** A valibot schema, synchronous or asynchronous. */
export type PayloadSchema = v.GenericSchema | v.GenericSchemaAsync;

/** A handler bound to its task type and payload schema, made by {@link defineHandler}. */
export interface HandlerDefinition<Schema extends PayloadSchema = PayloadSchema> {
  readonly type: string;
  readonly schema: Schema;
  // Method syntax on purpose: a definition for a specific schema stays assignable to HandlerDefinition.
  handle(task: Task<v.InferOutput<Schema>>, ctx: HandlerContext): unknown;
  readonly description: string;
  readonly version: string;
  /** Default per-attempt time limit for tasks of this type that do not set their own. */
  readonly timeoutMs?: number;
  /**
   * Default attempts for tasks of this type that do not set their own `maxAttempts`, applied at enqueue by
   * a `Queue` that knows the handler (one made with `{ registry }`, as the CLI's is).
   */
  readonly maxAttempts?: number;
  /** Backoff for tasks of this type, field by field over the worker's `retry`; a task's own `retry` wins. */
  readonly retry?: Partial<RetryPolicy>;
  /**
   * The queue tasks of this type go to when their enqueue names none (through a `Queue` that has the
   * registry, as the CLI's has). @default "default"
   */
  readonly queue?: string;
  /**
   * The `unique` key of tasks of this type whose enqueue gives none (see `UniqueOptions`), from their
   * validated payload; undefined for none. Applied at enqueue by a `Queue` that knows the handler (not to
   * the tasks schedules fire: give a schedule its own `unique`); an enqueue's own `unique` wins, and
   * `unique: null` opts out.
   */
  unique?(payload: v.InferOutput<Schema>): UniqueOptions | undefined;
}

/** Checks a task type: a non-blank string without surrounding whitespace. */
export function assertTaskType(taskType: unknown): asserts taskType is string {
  if (typeof taskType !== "string") {
    throw invalidType(`A task type must be a string, got ${taskType === null ? "null" : typeof taskType}.`);
  }
  if (taskType.trim() === "") {
    throw invalidType(`Task type cannot be empty: got ${JSON.stringify(taskType)}.`);
  }
  if (taskType.trim() !== taskType) {
    throw invalidType(`Task type '${taskType}' has leading or trailing whitespace; remove it.`);
  }
}

/**
 * Marks the definitions {@link defineHandler} made. A symbol of the global registry, so that a definition made
 * by another copy of this module (loaded through another path) is recognised too.
 */
const MADE_BY_DEFINE_HANDLER = Symbol.for("prismq.madeByDefineHandler");

/**
 * Defines a handler whose payload is validated against `schema` before `handle` runs. The payload type
 * `handle` receives is inferred from the schema. A payload that does not match fails the task at once,
 * without retry, with an error naming the invalid fields; a queue bound to a registry refuses it at enqueue.
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { defineHandler } from "prismq";
 *
 * export const greet = defineHandler({
 *   type: "greet",
 *   schema: v.object({ name: v.pipe(v.string(), v.minLength(1)) }),
 *   description: "Says hello",
 *   maxAttempts: 3, // its tasks' default; a task's own maxAttempts wins
 *   retry: { initialDelayMs: 200, multiplier: 3 }, // over the worker's retry; a task's own retry wins
 *   unique: (payload) => ({ key: `greet:${payload.name}`, while: "active" }), // one pending greeting a name
 *   handle(task) {
 *     return `hello ${task.payload.name}`; // task.payload is { name: string }; stored as the task's result
 *   },
 * });
 * ```
 */
export function defineHandler<Schema extends PayloadSchema>(definition: {
  type: string;
  schema: Schema;
  handle: (task: Task<v.InferOutput<Schema>>, ctx: HandlerContext) => unknown;
  description?: string;
  version?: string;
  timeoutMs?: number;
  maxAttempts?: number;
  retry?: Partial<RetryPolicy>;
  queue?: string;
  unique?: (payload: v.InferOutput<Schema>) => UniqueOptions | undefined;
}): HandlerDefinition<Schema> {
  assertTaskType(definition.type);
  const schema = definition.schema as { kind?: unknown } | undefined;
  if (typeof schema !== "object" || schema === null || schema.kind !== "schema") {
    throw invalidType(
      `The schema of handler '${definition.type}' must be a valibot schema, like v.object({...}).`,
    );
  }
  if (typeof definition.handle !== "function") {
    throw invalidType(`The handle of handler '${definition.type}' must be a function.`);
  }
  const { timeoutMs } = definition;
  if (timeoutMs !== undefined) wholeNumber(`The timeoutMs of handler '${definition.type}'`, timeoutMs, 1);
  const { maxAttempts } = definition;
  if (maxAttempts !== undefined) {
    wholeNumber(`The maxAttempts of handler '${definition.type}'`, maxAttempts, 1);
  }
  const retry = retryOverrides(`The retry of handler '${definition.type}'`, definition.retry);
  const { queue } = definition;
  if (queue !== undefined) queueName(queue, `The queue of handler '${definition.type}'`);
  const { unique } = definition;
  if (unique !== undefined && typeof unique !== "function") {
    throw invalidType(
      `The unique of handler '${definition.type}' must be a function of the payload that returns ` +
        `{ key, while: "active" } or { key, forMs }, or undefined.`,
    );
  }
  const made = {
    type: definition.type,
    schema: definition.schema,
    handle: definition.handle,
    description: definition.description ?? "",
    version: definition.version ?? "1.0.0",
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(maxAttempts === undefined ? {} : { maxAttempts }),
    ...(retry === null ? {} : { retry: Object.freeze(retry) }),
    ...(queue === undefined ? {} : { queue }),
    ...(unique === undefined ? {} : { unique }),
  };
  // Not enumerable: invisible to spreads, JSON and equality checks.
  return Object.freeze(Object.defineProperty(made, MADE_BY_DEFINE_HANDLER, { value: true }));
}

/** Whether `value` has the shape of a handler definition (the registry also takes hand-made ones). */
export function isHandlerDefinition(value: unknown): value is HandlerDefinition {
  return typeof value === "object" && value !== null && "handle" in value && "schema" in value &&
    "type" in value;
}

/**
 * Whether `value` was made by {@link defineHandler}, which checked its type, schema, handler and time limit:
 * what the manifest of linked handlers must hold.
 */
export function isMadeByDefineHandler(value: unknown): value is HandlerDefinition {
  return typeof value === "object" && value !== null &&
    (value as { [MADE_BY_DEFINE_HANDLER]?: unknown })[MADE_BY_DEFINE_HANDLER] === true;
}

/** What `value` is, in a few words, for errors about something that should be a handler definition. */
export function describeNonDefinition(value: unknown): string {
  if (value === undefined || value === null) return String(value);
  if (typeof value === "function") return "a function";
  if (typeof value === "object") {
    const type = (value as { type?: unknown }).type;
    return Array.isArray(value)
      ? "an array"
      : typeof type === "string"
      ? `a plain object with type '${type}'`
      : "an object";
  }
  return `the ${typeof value} ${JSON.stringify(value) ?? String(value)}`;
}

/**
 * Validates `payload` against `schema` and returns the parsed output.
 *
 * @throws {PayloadValidationError} naming every invalid field
 */
export async function parsePayload<Schema extends PayloadSchema>(
  taskType: string,
  schema: Schema,
  payload: unknown,
): Promise<v.InferOutput<Schema>> {
  return await parsePayloadNow(taskType, schema, payload);
}

/**
 * {@link parsePayload}, answered at once when the schema is synchronous, as most are: the worker and bulk
 * enqueues call it for every task, and a promise each would cost more than the parse.
 *
 * @throws {PayloadValidationError} for a synchronous schema; an asynchronous one rejects with it
 */
export function parsePayloadNow<Schema extends PayloadSchema>(
  taskType: string,
  schema: Schema,
  payload: unknown,
): v.InferOutput<Schema> | Promise<v.InferOutput<Schema>> {
  if (schema.async) return v.safeParseAsync(schema, payload).then((result) => parsed(taskType, result));
  return parsed(taskType, v.safeParse(schema, payload));
}

function parsed<Output>(
  taskType: string,
  result: { success: true; output: Output } | {
    success: false;
    issues: [v.BaseIssue<unknown>, ...v.BaseIssue<unknown>[]];
  },
): Output {
  if (result.success) return result.output;
  throw new PayloadValidationError(
    taskType,
    result.issues.map((issue) => ({ path: v.getDotPath(issue) ?? "(root)", message: issue.message })),
  );
}
