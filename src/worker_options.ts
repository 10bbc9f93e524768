/**
 * A worker's options, checked and with their defaults filled in. Every option is checked here, at
 * construction, so that a value the worker could not honour (Infinity, a fraction, a timer longer than the
 * runtime keeps) is refused with its name rather than failing later inside the loop.
 *
 * @module
 */
import { type Clock, systemClock } from "./clock.ts";
import { duration, wellFormed, wholeNumber } from "./checks.ts";
import { assertTaskType } from "./handler.ts";
import { resolveRetryPolicy, type RetryPolicy } from "./retry.ts";
import { CLAIM_STRATEGIES, type ClaimStrategy } from "./store/store.ts";
import type { WorkerEngineOptions } from "./worker.ts";

/** Most handlers one engine runs at once, and most tasks it claims ahead. */
export const MAX_CONCURRENCY = 10_000;
export const MAX_PREFETCH = 100_000;

export interface ResolvedWorkerOptions {
  strategy: ClaimStrategy;
  leaseMs: number;
  pollIntervalMs: number;
  concurrency: number;
  prefetch: number;
  retry: RetryPolicy;
  types: readonly string[] | undefined;
  heartbeatIntervalMs: number;
  reapIntervalMs: number;
  reapGraceMs: number;
  shutdownGraceMs: number;
  host: string | null;
  pid: number | null;
  clock: Clock;
  random: () => number;
  onEvent: WorkerEngineOptions["onEvent"];
}

/** @throws {TypeError | RangeError} naming the first option that is wrong */
export function resolveWorkerOptions(options: WorkerEngineOptions): ResolvedWorkerOptions {
  const strategy = options.strategy ?? "priority";
  if (!CLAIM_STRATEGIES.includes(strategy)) {
    throw new TypeError(`Unknown strategy '${strategy}'. Use one of: ${CLAIM_STRATEGIES.join(", ")}.`);
  }
  const leaseMs = duration("leaseMs", options.leaseMs ?? 60_000, 100);
  const heartbeatIntervalMs = duration(
    "heartbeatIntervalMs",
    options.heartbeatIntervalMs ?? Math.min(Math.floor(leaseMs / 3), 1000),
    1,
  );
  if (heartbeatIntervalMs >= leaseMs) {
    throw new RangeError(
      `heartbeatIntervalMs (${heartbeatIntervalMs}) must be shorter than leaseMs (${leaseMs}).`,
    );
  }
  return {
    strategy,
    leaseMs,
    pollIntervalMs: duration("pollIntervalMs", options.pollIntervalMs ?? 100, 1),
    concurrency: wholeNumber("concurrency", options.concurrency ?? 1, 1, MAX_CONCURRENCY),
    prefetch: wholeNumber("prefetch", options.prefetch ?? 512, 0, MAX_PREFETCH),
    retry: resolveRetryPolicy(options.retry),
    types: options.types === undefined ? undefined : taskTypes(options.types),
    heartbeatIntervalMs,
    reapIntervalMs: duration("reapIntervalMs", options.reapIntervalMs ?? 1000, 1),
    reapGraceMs: duration("reapGraceMs", options.reapGraceMs ?? 2 * heartbeatIntervalMs, 0),
    shutdownGraceMs: duration("shutdownGraceMs", options.shutdownGraceMs ?? Infinity, 0, { infinite: true }),
    host: optional("host", options.host, (host) => typeof host === "string", "a string"),
    pid: optional("pid", options.pid, (pid) => Number.isSafeInteger(pid), "a whole number"),
    clock: check(
      "clock",
      options.clock ?? systemClock,
      (c) => typeof c?.now === "function" && (c.elapsed === undefined || typeof c.elapsed === "function"),
      "a { now(), elapsed?() } object",
    ),
    random: check("random", options.random ?? Math.random, (r) => typeof r === "function", "a function"),
    onEvent: options.onEvent === undefined
      ? undefined
      : check("onEvent", options.onEvent, (f) => typeof f === "function", "a function"),
  };
}

function taskTypes(types: unknown): readonly string[] {
  if (!Array.isArray(types) || types.length === 0) {
    throw new TypeError("`types` must be a non-empty array of task types, or left out for every type.");
  }
  for (const type of types) {
    assertTaskType(type);
    wellFormed(`The task type ${JSON.stringify(type)} in \`types\``, type);
  }
  return [...types];
}

function check<T>(name: string, value: T, ok: (value: T) => boolean, what: string): T {
  if (!ok(value)) throw new TypeError(`${name} must be ${what}.`);
  return value;
}

function optional<T>(name: string, value: T | null | undefined, ok: (value: T) => boolean, what: string) {
  return value === undefined || value === null ? null : check(name, value, ok, `${what}, or null`);
}
