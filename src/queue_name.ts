/**
 * Named queues: what a queue's name may be, and the limits a queue may have. A task belongs to one queue
 * (`"default"` unless it says otherwise); workers choose the queues they serve; a queue may have fleet-wide
 * limits and be paused (see `Queue.setQueueLimits`).
 *
 * @module
 */
import { isWholeNumber, wholeNumber } from "./checks.ts";
import { invalidRange, invalidType } from "./errors.ts";

/** The queue of a task that names none. */
export const DEFAULT_QUEUE = "default";

/** The longest queue name, in characters. */
export const MAX_QUEUE_NAME_LENGTH = 128;

// Letters, digits, '_', '-' and '.': nothing the command line uses to separate (`--queues a:4,b`), quote or
// escape, so a name reads the same in every tool.
const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * `name`, when it can be a queue's name: 1 to 128 letters, digits, `_`, `-` or `.`, starting with a letter or
 * a digit.
 *
 * @param what how the name is introduced in the message (`queue`, `The queue in --queues`)
 * @throws {TypeError} naming the value and what a name may be
 */
export function queueName(name: unknown, what = "queue"): string {
  if (
    typeof name === "string" && name.length <= MAX_QUEUE_NAME_LENGTH && QUEUE_NAME.test(name)
  ) return name;
  const shown = typeof name === "string" ? JSON.stringify(name) : name === null ? "null" : typeof name;
  throw invalidType(
    `${what} must be a queue name of 1 to ${MAX_QUEUE_NAME_LENGTH} letters, digits, '_', '-' or '.', ` +
      `starting with a letter or digit; got ${shown}.`,
  );
}

/** At most `limit` tasks of a queue start per `intervalMs`, across the fleet. */
export interface RateLimit {
  limit: number;
  intervalMs: number;
}

/** A queue's fleet-wide limits; `null` for none. */
export interface QueueLimits {
  /** At most this many of the queue's tasks run at once, across every worker and host. */
  concurrency: number | null;
  /** At most this many of its tasks start per interval, across the fleet. */
  rate: RateLimit | null;
}

/** The longest rate interval: a day. */
export const MAX_RATE_INTERVAL_MS = 86_400_000;

/** A concurrency limit: a whole number ≥ 1, or null for none. */
export function concurrencyLimit(value: unknown): number | null {
  if (value === null) return null;
  return wholeNumber("The concurrency limit", value, 1, 1_000_000_000);
}

/** A rate limit: `{ limit, intervalMs }` (a whole number ≥ 1 per 1 ms to a day), or null for none. */
export function rateLimit(value: unknown): RateLimit | null {
  if (value === null) return null;
  if (typeof value !== "object") throw invalidType("The rate limit must be { limit, intervalMs } or null.");
  const { limit, intervalMs } = value as Partial<RateLimit>;
  return {
    limit: wholeNumber("The rate limit's limit", limit, 1, 1_000_000_000),
    intervalMs: wholeNumber("The rate limit's intervalMs", intervalMs, 1, MAX_RATE_INTERVAL_MS),
  };
}

const RATE_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A rate as written on the command line: `100/s`, `5/2m`, `1000/1h`.
 *
 * @throws {RangeError} for anything else, saying what is allowed
 */
export function parseRate(text: string): RateLimit {
  const match = /^(\d+)\/(\d*)(ms|s|m|h|d)$/.exec(text.trim());
  const limit = match ? Number(match[1]) : NaN;
  const intervalMs = match ? Number(match[2] || "1") * RATE_UNITS[match[3]!]! : NaN;
  if (!isWholeNumber(limit, 1) || !isWholeNumber(intervalMs, 1, MAX_RATE_INTERVAL_MS)) {
    throw invalidRange(
      `A rate is a number of starts per interval, like 100/s, 5/2m or 1000/1h (an interval up to 1d); ` +
        `got ${JSON.stringify(text)}.`,
    );
  }
  return { limit, intervalMs };
}

/** A rate limit in the words {@link parseRate} reads: `100/s`, `5/2m`. */
export function formatRate(rate: RateLimit): string {
  for (const unit of ["d", "h", "m", "s"]) {
    const size = RATE_UNITS[unit]!;
    if (rate.intervalMs % size === 0) {
      const n = rate.intervalMs / size;
      return `${rate.limit}/${n === 1 ? "" : n}${unit}`;
    }
  }
  return `${rate.limit}/${rate.intervalMs}ms`;
}
