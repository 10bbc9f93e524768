/**
 * The backoff policy: how long a failed task waits before its next attempt.
 *
 * @module
 */

import { MAX_DURATION_MS } from "./checks.ts";
import { invalidRange, invalidType } from "./errors.ts";

/** Exponential backoff with jitter. */
export interface RetryPolicy {
  /** Delay before the second attempt. @default 1000 */
  initialDelayMs: number;
  /** Each further attempt waits this many times longer. @default 2 */
  multiplier: number;
  /** No delay is longer than this. @default 300000 */
  maxDelayMs: number;
  /** Random spread as a fraction of the delay: 0.1 means ±10 %. @default 0.1 */
  jitter: number;
}

/** The original design's policy: 1 s × 2^(attempt−1), capped at 300 s, ±10 %. */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  initialDelayMs: 1000,
  multiplier: 2,
  maxDelayMs: 300_000,
  jitter: 0.1,
});

/** Fills in defaults and rejects values that make no sense, naming the option at fault. */
export function resolveRetryPolicy(options: Partial<RetryPolicy> = {}): RetryPolicy {
  return checkRetryPolicy({ ...DEFAULT_RETRY_POLICY, ...stripUndefined(options) }, "retry");
}

const POLICY_KEYS: readonly (keyof RetryPolicy)[] = ["initialDelayMs", "multiplier", "maxDelayMs", "jitter"];

/**
 * Checks a partial policy, a handler's or a task's, keeping only the fields it sets: what it overrides of
 * the policies beneath it (see {@link retryPolicyFor}). Null when it sets none.
 *
 * @param label how to name it in an error, e.g. `retry` or `The retry of handler 'x'`
 * @throws {TypeError | RangeError} naming the field at fault, or an unknown field
 */
export function retryOverrides(label: string, options: unknown): Partial<RetryPolicy> | null {
  if (options === undefined || options === null) return null;
  if (typeof options !== "object" || Array.isArray(options)) {
    throw invalidType(`${label} must be an object like { initialDelayMs: 1000, jitter: 0.1 }.`);
  }
  const given = stripUndefined(options as Record<string, unknown>);
  for (const key of Object.keys(given)) {
    if (!(POLICY_KEYS as readonly string[]).includes(key)) {
      throw invalidType(`${label}.${key} is not a retry option; use ${POLICY_KEYS.join(", ")}.`);
    }
  }
  const overrides = given as Partial<RetryPolicy>;
  if (Object.keys(overrides).length === 0) return null;
  checkRetryPolicy({ ...DEFAULT_RETRY_POLICY, ...overrides }, label);
  // In a fixed order, so that equal policies are stored as equal text.
  return Object.fromEntries(
    POLICY_KEYS.filter((key) => key in overrides).map((key) => [key, overrides[key]]),
  );
}

/**
 * The policy a failed attempt backs off by: field by field, the task's own over its handler's over the
 * worker's. A task that sets only `initialDelayMs` keeps its handler's `multiplier`, and so on.
 *
 * @example
 * ```ts
 * import { DEFAULT_RETRY_POLICY, retryPolicyFor } from "./retry.ts";
 * retryPolicyFor(DEFAULT_RETRY_POLICY, { multiplier: 3 }, { initialDelayMs: 10 });
 * // { initialDelayMs: 10, multiplier: 3, maxDelayMs: 300000, jitter: 0.1 }
 * ```
 */
export function retryPolicyFor(
  worker: RetryPolicy,
  handler?: Partial<RetryPolicy> | null,
  task?: Partial<RetryPolicy> | null,
): RetryPolicy {
  if (!handler && !task) return worker;
  return { ...worker, ...handler, ...task };
}

function checkRetryPolicy(policy: RetryPolicy, label: string): RetryPolicy {
  const check = (name: keyof RetryPolicy, ok: boolean, rule: string) => {
    if (!ok) throw invalidRange(`${label}.${name} must be ${rule}, got ${policy[name]}.`);
  };
  const delay = (ms: number) => Number.isFinite(ms) && ms >= 0 && ms <= MAX_DURATION_MS;
  check(
    "initialDelayMs",
    delay(policy.initialDelayMs),
    `a number of milliseconds from 0 to ${MAX_DURATION_MS}`,
  );
  check("multiplier", Number.isFinite(policy.multiplier) && policy.multiplier >= 1, "a number ≥ 1");
  check("maxDelayMs", delay(policy.maxDelayMs), `a number of milliseconds from 0 to ${MAX_DURATION_MS}`);
  check(
    "jitter",
    Number.isFinite(policy.jitter) && policy.jitter >= 0 && policy.jitter <= 1,
    "between 0 and 1",
  );
  return policy;
}

/**
 * The delay in whole milliseconds before the attempt that follows failed attempt number `attempt` (1-based).
 * The result lies within ±`jitter` of `min(initialDelayMs × multiplier^(attempt−1), maxDelayMs)` and never
 * exceeds `maxDelayMs`.
 *
 * @param random a number in [0, 1); tests pass their own
 *
 * @example
 * ```ts
 * import { backoffDelayMs, DEFAULT_RETRY_POLICY } from "./retry.ts";
 * backoffDelayMs(DEFAULT_RETRY_POLICY, 3, () => 0.5); // 4000
 * ```
 */
export function backoffDelayMs(
  policy: RetryPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, attempt - 1);
  // 0 × Infinity is NaN, so a zero initial delay stays zero however many attempts have failed.
  const growth = policy.initialDelayMs === 0 ? 0 : policy.initialDelayMs * policy.multiplier ** exponent;
  const base = Math.min(growth, policy.maxDelayMs);
  const spread = policy.jitter * (2 * random() - 1);
  return Math.max(0, Math.min(Math.round(base * (1 + spread)), Math.floor(policy.maxDelayMs)));
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
