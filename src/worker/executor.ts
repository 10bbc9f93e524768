/**
 * The executor: runs one attempt of a task. It finds the task's handler, validates the payload against the
 * handler's schema, gives the handler its context (signal, heartbeat, progress, log), enforces the time
 * limit, and turns what happened into an outcome (see outcome.ts), the handler's return value its result. It writes nothing but what the handler asks for
 * through its context.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { QueueDatabase } from "../database.ts";
import { LeaseLostError, TaskHandlerNotRegisteredError, TaskTimeoutError } from "../errors.ts";
import { type HandlerContext, parsePayloadNow, type PayloadSchema, type TaskHandler } from "../handler.ts";
import type { TaskHandlerRegistry } from "../registry.ts";
import { type RetryPolicy, retryPolicyFor } from "../retry.ts";
import { toWellFormed } from "../checks.ts";
import type { Fence, Finish, LogLevel, Store } from "../store/store.ts";
import type { TaskAbort } from "../task_abort.ts";
import type { Task } from "../task.ts";
import { clearLongTimeout, longTimeout } from "../timers.ts";
import { completedOutcome, failedOutcome, failureOutcome } from "./outcome.ts";
import type { ResolvedWorkerOptions } from "./options.ts";
import { ProgressWriter } from "./progress.ts";
import { storedJson } from "./result.ts";
import { type AttemptTracer, loadAttemptTracer } from "./tracing.ts";

/** An attempt under way: the task as it runs, the claim it runs under, and how to stop its handler. */
export interface Running {
  task: Task;
  fence: Fence;
  abort: TaskAbort;
  /** Set once the worker no longer holds the task: its outcome must not be recorded. */
  lost: LeaseLostError | null;
  /** Set once the handler has returned (or thrown): its attempt is over, and with it the lease. */
  over: boolean;
}

/** Marks an attempt's task as no longer held, and aborts its handler's signal with the reason. */
export function lose(running: Running, reason: LeaseLostError): void {
  if (running.lost) return;
  running.lost = reason;
  running.abort.abort(reason);
}

/** Why a task whose lease did not hold was lost, from its status now: cancelled, or else reclaimed. */
export function lossOf(taskId: number, status: string | undefined): LeaseLostError {
  return new LeaseLostError(taskId, status === "cancelled" ? "cancelled" : "reclaimed");
}

/** {@link lossOf}, reading the task's status. */
export async function lossFrom(store: Pick<Store, "taskGet">, taskId: number): Promise<LeaseLostError> {
  return lossOf(taskId, (await store.taskGet(taskId))?.status);
}

type Resolved =
  | {
    handler: TaskHandler;
    schema?: PayloadSchema | undefined;
    timeoutMs?: number | undefined;
    retry?: Partial<RetryPolicy> | undefined;
  }
  | { refusal: string };

type ExecutorStore = Pick<Store, "taskExtendLease" | "taskGet" | "taskLogAppend" | "taskSetProgress">;

export class Executor {
  readonly #db: QueueDatabase;
  readonly #store: ExecutorStore;
  readonly #workerId: string;
  readonly #registry: TaskHandlerRegistry | undefined;
  readonly #leaseMs: number;
  readonly #retry: RetryPolicy;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #maxResultBytes: number;
  /** The span maker, once `@opentelemetry/api` was looked for: null without it. */
  #tracer: AttemptTracer | null | undefined = undefined;
  readonly #tracerLoading: Promise<AttemptTracer | null>;

  /** @param db what handlers get as `ctx.db`; the store is used only for what the context offers them */
  constructor(db: QueueDatabase, store: ExecutorStore, options: ResolvedWorkerOptions) {
    this.#db = db;
    this.#store = store;
    this.#workerId = options.workerId;
    this.#registry = options.registry;
    this.#leaseMs = options.leaseMs;
    this.#retry = options.retry;
    this.#clock = options.clock;
    this.#random = options.random;
    this.#maxResultBytes = options.maxResultBytes;
    this.#tracerLoading = loadAttemptTracer().then((tracer) => this.#tracer = tracer);
  }

  /**
   * Runs one attempt, with `explicit` as the handler or else the one registered for the task's type, and
   * decides its outcome. Never throws.
   */
  run(running: Running, explicit: TaskHandler | undefined): Promise<Finish> {
    const tracer = this.#tracer;
    // Only the first attempts wait for the package to be looked for; every later one knows.
    if (tracer === undefined) return this.#tracerLoading.then(() => this.run(running, explicit));
    const attempt = this.#attempt(running, this.#resolve(running.task, explicit));
    if (tracer === null) return attempt;
    // One span per attempt, ended however it ends (the attempt never rejects): a timeout or a cancel
    // ends it too, as the handler's abort ends the attempt.
    const span = tracer.start(running.task, this.#workerId);
    if (span === null) return attempt;
    return attempt.then((finish) => {
      span.end(finish, running.lost);
      return finish;
    });
  }

  #resolve(task: Task, explicit: TaskHandler | undefined): Resolved {
    if (explicit) return { handler: explicit };
    const info = this.#registry!.getHandlerInfo(task.type);
    if (!info) {
      return {
        refusal: new TaskHandlerNotRegisteredError(task.type, this.#registry!.getRegisteredTypes()).message,
      };
    }
    return { handler: info.handler, schema: info.schema, timeoutMs: info.timeoutMs, retry: info.retry };
  }

  async #attempt(running: Running, resolved: Resolved): Promise<Finish> {
    const { task, fence, abort } = running;
    if ("refusal" in resolved) return failedOutcome(fence, resolved.refusal);
    const timeoutMs = task.timeoutMs ?? resolved.timeoutMs;
    const timer = timeoutMs === undefined
      ? undefined
      : longTimeout(() => abort.abort(new TaskTimeoutError(task.id, timeoutMs)), timeoutMs);
    try {
      let payload = resolved.schema
        ? parsePayloadNow(task.type, resolved.schema, task.payload)
        : task.payload;
      if (payload instanceof Promise) payload = await payload;
      const outcome = resolved.handler({ ...task, payload }, this.#context(running));
      // A handler that returned a promise is raced against its abort; one that returned a value is done.
      let result = outcome;
      if (isPromiseLike(outcome)) result = await abort.race(outcome);
      else if (abort.aborted) await abort.race(Promise.resolve());
      if (result === undefined) return completedOutcome(fence);
      return await this.#completedWith(running, result);
    } catch (error) {
      return failureOutcome(fence, error, {
        task,
        lost: running.lost !== null,
        now: this.#clock.now(),
        retry: retryPolicyFor(this.#retry, resolved.retry, task.retryPolicy),
        random: this.#random,
      });
    } finally {
      clearLongTimeout(timer);
    }
  }

  /**
   * The outcome of a handler that returned a value: completed with it as the result. A value that cannot be
   * stored (not JSON, too large) completes the task all the same, without a result, and says why in its log:
   * the handler's work is done, so failing the task would invite running it (and its side effects) again,
   * and a handler may return something incidental (a client's response, a query's rows).
   */
  async #completedWith(running: Running, result: unknown): Promise<Finish> {
    const { task, fence } = running;
    try {
      return completedOutcome(
        fence,
        storedJson(`The result of task ${task.id}`, result, this.#maxResultBytes),
      );
    } catch (error) {
      const message = `${(error as Error).message} The task is completed without a result.`;
      // Best effort: the outcome matters more than the line that explains its missing result.
      await this.#store.taskLogAppend([{ taskId: task.id, at: this.#clock.now(), level: "warn", message }])
        .catch(() => {});
      return completedOutcome(fence);
    }
  }

  /** What the handler gets besides its task: nothing of the worker's or the store's own. */
  #context(running: Running): HandlerContext {
    const { task, fence, abort } = running;
    let progress: ProgressWriter | undefined;
    const over = (call: string) =>
      new Error(
        `Task ${task.id}: ${call} was called after its handler returned, so there is no lease left to ` +
          `write under. Await the work that calls it before returning from the handler.`,
      );
    return {
      get signal() {
        return abort.signal;
      },
      workerId: this.#workerId,
      db: this.#db,
      attempt: task.attempts,
      heartbeat: async () => {
        if (running.over) throw over("heartbeat()");
        if (running.lost) throw running.lost;
        const now = this.#clock.now();
        if (!await this.#store.taskExtendLease(fence, now + this.#leaseMs, now)) {
          lose(running, await lossFrom(this.#store, task.id));
          throw running.lost;
        }
      },
      progress: (value: unknown) => {
        if (running.over) return Promise.reject(over("progress()"));
        if (running.lost) return Promise.reject(running.lost);
        let json: string;
        try {
          json = storedJson(`The progress of task ${task.id}`, value, this.#maxResultBytes);
        } catch (error) {
          return Promise.reject(error);
        }
        progress ??= new ProgressWriter(async (value) => {
          if (running.lost) throw running.lost;
          if (!await this.#store.taskSetProgress(fence, value, this.#clock.now())) {
            lose(running, await lossFrom(this.#store, task.id));
            throw running.lost;
          }
        });
        return progress.set(json);
      },
      // Kept rather than refused, so made well-formed: a lone surrogate has no UTF-8 form.
      log: (level: LogLevel, message: string, details?: unknown) =>
        this.#store.taskLogAppend([{
          taskId: task.id,
          at: this.#clock.now(),
          level,
          message: typeof message === "string" ? toWellFormed(message) : message,
          details,
        }]),
    };
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === "function";
}
