/**
 * A worker's options: what each means, and how they are checked and given their defaults. Every option is
 * checked here, at construction, so that a value the worker could not honour (Infinity, a fraction, a timer longer than the
 * runtime keeps) is refused with its name rather than failing later inside the loop.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import { clockOption, duration, registryOption, wellFormed, wholeNumber } from "../checks.ts";
import type { QueueDatabase } from "../database.ts";
import { invalidRange, invalidType } from "../errors.ts";
import { assertTaskType } from "../handler.ts";
import { queueName } from "../queue_name.ts";
import type { TaskHandlerRegistry } from "../registry.ts";
import { resolveRetryPolicy, type RetryPolicy } from "../retry.ts";
import { CLAIM_STRATEGIES, type ClaimStrategy } from "../store/store.ts";
import type { WorkerEvent } from "./events.ts";

/** Options of `new WorkerEngine()`. */
export interface WorkerEngineOptions {
  db: QueueDatabase;
  /** Unique among the workers sharing the database. */
  workerId: string;
  /** Routes each task to the handler registered for its type. */
  handlerRegistry?: TaskHandlerRegistry | undefined;
  /** @default "priority" */
  strategy?: ClaimStrategy | undefined;
  /** How long a claim holds a task before another worker may take it over. Extended while alive. @default 60000 */
  leaseMs?: number | undefined;
  /** How often an idle worker looks for tasks added by other processes. @default 100 */
  pollIntervalMs?: number | undefined;
  /** Handlers run at once by this engine. @default 1 */
  concurrency?: number | undefined;
  /**
   * Most tasks claimed ahead of free slots, so that quick tasks are claimed many per statement. The worker
   * claims ahead only as many as it expects to start within about 10 ms (judged by how long its handlers
   * have been taking), so slow tasks are never held back from other workers, and no more than about
   * 16 MiB of payloads (judged by the payloads it has claimed). 0 turns it off.
   * @default 512
   */
  prefetch?: number | undefined;
  /**
   * The backoff of failed attempts, for tasks whose handler and own `retry` leave a field unset (a task's
   * own over its handler's over this, field by field). @default DEFAULT_RETRY_POLICY
   */
  retry?: Partial<RetryPolicy> | undefined;
  /**
   * Largest result (a handler's return value) or progress value stored, in bytes of JSON. A result over it
   * is not stored (the task completes without one, and its log says why); a progress value over it is
   * refused by `ctx.progress()`. @default 1048576 (1 MiB)
   */
  maxResultBytes?: number | undefined;
  /** Claim only these task types. @default every type */
  types?: readonly string[] | undefined;
  /**
   * The named queues this engine serves. A list shares `concurrency` among them; a map gives each queue
   * slots of its own (`{ emails: 4, reports: 1 }`: a lane per queue, each a worker of its own, shown as
   * `<workerId>/<queue>` by `prismq workers`). Paused queues are never claimed from, and each queue's
   * fleet-wide limits hold whatever a worker asks for.
   * @default every queue: a worker that names none runs what is enqueued, into whatever queue, as it did
   *   before queues existed; limits and pauses still apply. Name queues to keep a worker off the others.
   */
  queues?: readonly string[] | Readonly<Record<string, number>> | undefined;
  /** How often leases are extended and the worker's row refreshed. @default min(leaseMs / 3, 1000) */
  heartbeatIntervalMs?: number | undefined;
  /** How often expired leases are looked for. @default 1000 */
  reapIntervalMs?: number | undefined;
  /**
   * How long (in elapsed time, which clock steps do not move) an expired lease must stay expired and
   * unrenewed before this worker takes it: a live worker renews its leases meanwhile, so a clock step
   * cannot take them from it. Keep it above the heartbeat interval of every worker sharing the database.
   * 0 takes expired leases at once. @default twice heartbeatIntervalMs
   */
  reapGraceMs?: number | undefined;
  /**
   * On a database that elects a leader for the fleet's maintenance (PostgreSQL), how long a leader's term
   * lasts unless it renews it (every third of it): only the leader reaps expired leases, and when it dies
   * another worker takes over within about this long. Elsewhere every worker reaps. At least twice
   * reapIntervalMs. @default the smaller of 10000 and leaseMs (a dead leader's workers' tasks wait for
   *   their leases anyway), but at least twice reapIntervalMs
   */
  leaderLeaseMs?: number | undefined;
  /** How long `stop()` (and an aborted `runLoop` signal) waits for running handlers. @default Infinity */
  shutdownGraceMs?: number | undefined;
  /** Shown by `prismq workers`. */
  host?: string | null | undefined;
  pid?: number | null | undefined;
  clock?: Clock | undefined;
  /** Source of jitter; tests pass their own. */
  random?: (() => number) | undefined;
  /** Called for every task outcome; errors it throws are ignored. */
  onEvent?: ((event: WorkerEvent) => void) | undefined;
}

/** Most handlers one engine runs at once, and most tasks it claims ahead. */
export const MAX_CONCURRENCY = 10_000;
export const MAX_PREFETCH = 100_000;

export interface ResolvedWorkerOptions {
  workerId: string;
  registry: TaskHandlerRegistry | undefined;
  strategy: ClaimStrategy;
  leaseMs: number;
  pollIntervalMs: number;
  concurrency: number;
  prefetch: number;
  retry: RetryPolicy;
  maxResultBytes: number;
  types: readonly string[] | undefined;
  /** The queues this engine claims from (all when undefined). */
  queues: readonly string[] | undefined;
  /** A lane per queue, each with its own slots, when `queues` was a map. */
  lanes: ReadonlyMap<string, number> | undefined;
  heartbeatIntervalMs: number;
  reapIntervalMs: number;
  reapGraceMs: number;
  leaderLeaseMs: number;
  shutdownGraceMs: number;
  host: string | null;
  pid: number | null;
  clock: Clock;
  random: () => number;
  onEvent: WorkerEngineOptions["onEvent"];
}

/** @throws {TypeError | RangeError} naming the first option that is wrong */
export function resolveWorkerOptions(options: WorkerEngineOptions): ResolvedWorkerOptions {
  const { workerId } = options;
  if (typeof workerId !== "string" || workerId.trim() === "") {
    throw invalidType("WorkerEngine needs a non-empty `workerId`.");
  }
  const strategy = options.strategy ?? "priority";
  if (!CLAIM_STRATEGIES.includes(strategy)) {
    throw invalidType(`Unknown strategy '${strategy}'. Use one of: ${CLAIM_STRATEGIES.join(", ")}.`);
  }
  const leaseMs = duration("leaseMs", options.leaseMs ?? 60_000, 100);
  const heartbeatIntervalMs = duration(
    "heartbeatIntervalMs",
    options.heartbeatIntervalMs ?? Math.min(Math.floor(leaseMs / 3), 1000),
    1,
  );
  if (heartbeatIntervalMs >= leaseMs) {
    throw invalidRange(
      `heartbeatIntervalMs (${heartbeatIntervalMs}) must be shorter than leaseMs (${leaseMs}).`,
    );
  }
  const reapIntervalMs = duration("reapIntervalMs", options.reapIntervalMs ?? 1000, 1);
  const leaderLeaseMs = duration(
    "leaderLeaseMs",
    options.leaderLeaseMs ?? Math.max(Math.min(10_000, leaseMs), 2 * reapIntervalMs),
    1,
  );
  if (leaderLeaseMs < 2 * reapIntervalMs) {
    throw invalidRange(
      `leaderLeaseMs (${leaderLeaseMs}) must be at least twice reapIntervalMs (${reapIntervalMs}): a ` +
        `leader renews its term as it reaps.`,
    );
  }
  const host = optional("host", options.host, (host) => typeof host === "string", "a string");
  return {
    workerId: wellFormed("workerId", workerId),
    registry: options.handlerRegistry === undefined
      ? undefined
      : registryOption("handlerRegistry", options.handlerRegistry),
    strategy,
    leaseMs,
    pollIntervalMs: duration("pollIntervalMs", options.pollIntervalMs ?? 100, 1),
    concurrency: wholeNumber("concurrency", options.concurrency ?? 1, 1, MAX_CONCURRENCY),
    prefetch: wholeNumber("prefetch", options.prefetch ?? 512, 0, MAX_PREFETCH),
    retry: resolveRetryPolicy(options.retry),
    maxResultBytes: wholeNumber("maxResultBytes", options.maxResultBytes ?? 1024 * 1024, 1),
    types: options.types === undefined ? undefined : taskTypes(options.types),
    ...servedQueues(options.queues),
    heartbeatIntervalMs,
    reapIntervalMs,
    reapGraceMs: duration("reapGraceMs", options.reapGraceMs ?? 2 * heartbeatIntervalMs, 0),
    leaderLeaseMs,
    shutdownGraceMs: duration("shutdownGraceMs", options.shutdownGraceMs ?? Infinity, 0, { infinite: true }),
    host: host === null ? null : wellFormed("host", host),
    pid: optional("pid", options.pid, (pid) => Number.isSafeInteger(pid), "a whole number"),
    clock: options.clock === undefined ? systemClock : clockOption("clock", options.clock),
    random: check("random", options.random ?? Math.random, (r) => typeof r === "function", "a function"),
    onEvent: options.onEvent === undefined
      ? undefined
      : check("onEvent", options.onEvent, (f) => typeof f === "function", "a function"),
  };
}

function taskTypes(types: unknown): readonly string[] {
  if (!Array.isArray(types) || types.length === 0) {
    throw invalidType("`types` must be a non-empty array of task types, or left out for every type.");
  }
  for (const type of types) {
    assertTaskType(type);
    wellFormed(`The task type ${JSON.stringify(type)} in \`types\``, type);
  }
  return [...types];
}

/** `queues` as a list, or as lanes of their own concurrency. */
function servedQueues(
  queues: unknown,
): { queues: readonly string[] | undefined; lanes: ReadonlyMap<string, number> | undefined } {
  if (queues === undefined) return { queues: undefined, lanes: undefined };
  if (Array.isArray(queues)) {
    if (queues.length === 0) {
      throw invalidType("`queues` must name at least one queue, or be left out for every queue.");
    }
    const names = queues.map((queue) => queueName(queue, "A queue in `queues`"));
    return { queues: [...new Set(names)], lanes: undefined };
  }
  if (typeof queues !== "object" || queues === null) {
    throw invalidType("`queues` must be a list of queue names, or a map of queue names to concurrency.");
  }
  const entries = Object.entries(queues);
  if (entries.length === 0) throw invalidType("`queues` must name at least one queue.");
  const lanes = new Map(entries.map(([queue, concurrency]) => [
    queueName(queue, "A queue in `queues`"),
    wholeNumber(`The concurrency of queue '${queue}'`, concurrency, 1, MAX_CONCURRENCY),
  ]));
  return { queues: [...lanes.keys()], lanes };
}

function check<T>(name: string, value: T, ok: (value: T) => boolean, what: string): T {
  if (!ok(value)) throw invalidType(`${name} must be ${what}.`);
  return value;
}

function optional<T>(name: string, value: T | null | undefined, ok: (value: T) => boolean, what: string) {
  return value === undefined || value === null ? null : check(name, value, ok, `${what}, or null`);
}
