/**
 * The backoff policy: how long a failed task waits before its next attempt.
 *
 * @module
 */

import { MAX_DURATION_MS } from "./checks.ts";

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
  const policy = { ...DEFAULT_RETRY_POLICY, ...stripUndefined(options) };
  const check = (name: keyof RetryPolicy, ok: boolean, rule: string) => {
    if (!ok) throw new RangeError(`retry.${name} must be ${rule}, got ${policy[name]}.`);
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
