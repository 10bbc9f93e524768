/**
 * The registry of explicitly registered handlers: one handler per task type, no discovery, no loading.
 *
 * Every method is synchronous, and JavaScript runs one of them at a time per isolate, so the registry needs
 * no lock to be safe under concurrent use: a worker reads it once per claimed task, so it sees a change from
 * its next claim on, and a handler that is already running keeps the function it started with.
 *
 * @module
 */
import {
  formatTypeList,
  invalidType,
  PayloadValidationError,
  TaskHandlerAlreadyRegisteredError,
  TaskHandlerNotRegisteredError,
} from "./errors.ts";
import { wholeNumber } from "./checks.ts";
import { retryOverrides, type RetryPolicy } from "./retry.ts";
import {
  assertTaskType,
  type HandlerDefinition,
  isHandlerDefinition,
  parsePayloadNow,
  type PayloadSchema,
  type TaskHandler,
} from "./handler.ts";
import { isScheduleDefinition, type ScheduleDefinition } from "./schedule.ts";
import type { UniqueOptions } from "./enqueue_item.ts";

/** What the registry knows about one handler. */
export interface TaskHandlerInfo {
  readonly taskType: string;
  readonly handler: TaskHandler;
  readonly description: string;
  readonly version: string;
  /** The payload schema, when registered from a {@link HandlerDefinition}. */
  readonly schema?: PayloadSchema;
  /** Default per-attempt time limit, when the definition sets one. */
  readonly timeoutMs?: number | undefined;
  /** Default attempts of the type's tasks, when the definition sets them (applied at enqueue). */
  readonly maxAttempts?: number | undefined;
  /** The type's backoff over the worker's, when the definition sets one. */
  readonly retry?: Partial<RetryPolicy> | undefined;
  /** The queue its tasks go to when an enqueue names none, when the definition sets one. */
  readonly queue?: string | undefined;
  /** The `unique` key of its tasks whose enqueue gives none, from their payload, when the definition sets one. */
  readonly unique?: ((payload: unknown) => UniqueOptions | undefined) | undefined;
}

/** Options of {@link TaskHandlerRegistry.registerHandler}. */
export interface RegisterHandlerOptions {
  /** @default "" */
  description?: string | undefined;
  /** @default "1.0.0" */
  version?: string | undefined;
  /** Replace a handler already registered for the type instead of throwing. @default false */
  allowOverride?: boolean | undefined;
}

/**
 * Maps task types to handlers.
 *
 * @example
 * ```ts
 * import { TaskHandlerRegistry } from "prismq";
 * const registry = new TaskHandlerRegistry();
 * registry.registerHandler("send_email", (task) => console.log(task.payload), {
 *   description: "Sends email notifications",
 *   version: "1.0.0",
 * });
 * registry.isRegistered("send_email"); // true
 * ```
 */
export class TaskHandlerRegistry {
  readonly #handlers = new Map<string, TaskHandlerInfo>();
  readonly #schedules = new Map<string, ScheduleDefinition>();

  /**
   * Registers a handler for a task type, or a definition made by `defineHandler`.
   *
   * @throws {TaskHandlerAlreadyRegisteredError} when the type has a handler and `allowOverride` is not set
   * @throws {TypeError} when the type is empty or the handler is not a function
   */
  registerHandler(taskType: string, handler: TaskHandler, options?: RegisterHandlerOptions): void;
  registerHandler(
    definition: HandlerDefinition,
    options?: Pick<RegisterHandlerOptions, "allowOverride">,
  ): void;
  registerHandler(
    typeOrDefinition: string | HandlerDefinition,
    handlerOrOptions?: TaskHandler | RegisterHandlerOptions,
    maybeOptions: RegisterHandlerOptions = {},
  ): void {
    let info: TaskHandlerInfo;
    let allowOverride: boolean;
    if (typeof typeOrDefinition === "object" && isHandlerDefinition(typeOrDefinition)) {
      const definition = typeOrDefinition;
      const options = (handlerOrOptions ?? {}) as RegisterHandlerOptions;
      info = {
        taskType: definition.type,
        handler: definition.handle as TaskHandler,
        description: definition.description ?? "",
        version: definition.version ?? "1.0.0",
        schema: definition.schema,
        timeoutMs: definition.timeoutMs,
        // Checked again: the registry takes hand-made definitions too.
        maxAttempts: definition.maxAttempts === undefined
          ? undefined
          : wholeNumber(`The maxAttempts of handler '${definition.type}'`, definition.maxAttempts, 1),
        retry: retryOverrides(`The retry of handler '${definition.type}'`, definition.retry) ?? undefined,
        queue: definition.queue,
        unique: uniqueDefault(definition),
      };
      allowOverride = options.allowOverride ?? false;
    } else {
      const taskType = typeOrDefinition;
      assertTaskType(taskType);
      if (typeof handlerOrOptions !== "function") {
        throw invalidType(
          `The handler for task type '${taskType}' must be a function, got ${describe(handlerOrOptions)}.`,
        );
      }
      info = {
        taskType,
        handler: handlerOrOptions,
        description: maybeOptions.description ?? "",
        version: maybeOptions.version ?? "1.0.0",
      };
      allowOverride = maybeOptions.allowOverride ?? false;
    }
    assertTaskType(info.taskType);
    if (typeof info.handler !== "function") {
      throw invalidType(`The handler for task type '${info.taskType}' must be a function.`);
    }
    if (this.#handlers.has(info.taskType) && !allowOverride) {
      throw new TaskHandlerAlreadyRegisteredError(info.taskType);
    }
    this.#handlers.set(info.taskType, Object.freeze(info));
  }

  /**
   * The handler for a task type.
   *
   * @throws {TaskHandlerNotRegisteredError} listing the registered types
   */
  getHandler(taskType: string): TaskHandler {
    return this.#infoOrThrow(taskType).handler;
  }

  isRegistered(taskType: string): boolean {
    return this.#handlers.has(taskType);
  }

  /** A copy of the registered types; changing it does not change the registry. */
  getRegisteredTypes(): Set<string> {
    return new Set(this.#handlers.keys());
  }

  /**
   * Removes a handler; returns whether there was one.
   *
   * @throws {TypeError} when a registered schedule fires tasks of the type (every one would fail unhandled):
   *   unregister those schedules first
   */
  unregisterHandler(taskType: string): boolean {
    const firing = [...this.#schedules.values()].filter((schedule) => schedule.type === taskType);
    if (firing.length > 0) {
      throw invalidType(
        `Cannot unregister the handler of '${taskType}': schedule${firing.length === 1 ? "" : "s"} ` +
          `${firing.map((schedule) => `'${schedule.name}'`).join(", ")} fire${
            firing.length === 1 ? "s" : ""
          } ` +
          "its tasks. Unregister them first (registry.unregisterSchedule(name)).",
      );
    }
    return this.#handlers.delete(taskType);
  }

  getHandlerInfo(taskType: string): TaskHandlerInfo | undefined {
    return this.#handlers.get(taskType);
  }

  /**
   * Checks that a task's type has a handler.
   *
   * @throws {TaskHandlerNotRegisteredError} listing the registered types
   */
  validateTask(task: { type: string }): void {
    this.#infoOrThrow(task.type);
  }

  /** Removes every handler and schedule. */
  clear(): void {
    this.#handlers.clear();
    this.#schedules.clear();
  }

  /**
   * Registers a schedule made by `defineSchedule`, after its handler: workers on this registry fire it. Its
   * payload is checked against the handler's schema now (a synchronous schema; an asynchronous one is
   * checked when each task runs).
   *
   * @example
   * ```ts
   * import { defineSchedule, TaskHandlerRegistry } from "prismq";
   * const registry = new TaskHandlerRegistry();
   * registry.registerHandler("cleanup", () => {});
   * registry.registerSchedule(defineSchedule({ name: "hourly_cleanup", type: "cleanup", cron: "@hourly" }));
   * registry.getSchedules().map((s) => s.name); // ["hourly_cleanup"]
   * ```
   *
   * @throws {TypeError} for a value not made by `defineSchedule`, a name registered already (without
   *   `allowOverride`), or a type with no registered handler
   * @throws {PayloadValidationError} for a payload the handler's schema refuses
   */
  registerSchedule(schedule: ScheduleDefinition, options: { allowOverride?: boolean } = {}): void {
    if (!isScheduleDefinition(schedule)) {
      throw invalidType("registerSchedule takes a schedule made by defineSchedule({ name, type, cron }).");
    }
    const { name, type } = schedule;
    const info = this.#handlers.get(type);
    if (!info) {
      throw invalidType(
        `Schedule '${name}' is for task type '${type}', which has no registered handler. Register the ` +
          `handler first; registered types: ${formatTypeList(this.#handlers.keys())}.`,
      );
    }
    const existing = this.#schedules.get(name);
    if (existing && !options.allowOverride) {
      throw invalidType(
        `A schedule named '${name}' is registered already (cron "${existing.cron}", type ` +
          `'${existing.type}'). Give each schedule a name of its own, or pass { allowOverride: true } to ` +
          `replace it.`,
      );
    }
    if (info.schema && !info.schema.async) {
      try {
        parsePayloadNow(type, info.schema, schedule.payload);
      } catch (error) {
        if (error instanceof PayloadValidationError) error.message = `Schedule '${name}': ${error.message}`;
        throw error;
      }
    }
    this.#schedules.set(name, schedule);
  }

  /** The registered schedules, by name. */
  getSchedules(): ScheduleDefinition[] {
    return [...this.#schedules.values()].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  }

  /** Removes a schedule; returns whether there was one. Its state in the database stays. */
  unregisterSchedule(name: string): boolean {
    return this.#schedules.delete(name);
  }

  #infoOrThrow(taskType: string): TaskHandlerInfo {
    const info = this.#handlers.get(taskType);
    if (!info) throw new TaskHandlerNotRegisteredError(taskType, this.getRegisteredTypes());
    return info;
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  return typeof value;
}

// A symbol in the global registry of symbols, so that two copies of this module (loaded through different
// paths) still share one global registry per isolate.
const GLOBAL_KEY = Symbol.for("prismq.globalRegistry");
type WithGlobalRegistry = typeof globalThis & { [GLOBAL_KEY]?: TaskHandlerRegistry };

/** The registry shared by this process or isolate, created on first use. */
export function getGlobalRegistry(): TaskHandlerRegistry {
  return (globalThis as WithGlobalRegistry)[GLOBAL_KEY] ??= new TaskHandlerRegistry();
}

/** Replaces the global registry with a new, empty one. Useful between tests. */
export function resetGlobalRegistry(): void {
  (globalThis as WithGlobalRegistry)[GLOBAL_KEY] = new TaskHandlerRegistry();
}

/** A definition's `unique`, checked again (the registry takes hand-made definitions too) and bound to it. */
function uniqueDefault(definition: HandlerDefinition): TaskHandlerInfo["unique"] {
  const { unique } = definition;
  if (unique === undefined) return undefined;
  if (typeof unique !== "function") {
    throw invalidType(
      `The unique of handler '${definition.type}' must be a function of the payload that returns ` +
        `{ key, while: "active" } or { key, forMs }, or undefined.`,
    );
  }
  return (payload) => unique.call(definition, payload);
}
