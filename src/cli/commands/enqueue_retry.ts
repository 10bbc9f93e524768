/**
 * `prismq enqueue`'s per-task backoff: `--retry-delay`, `--retry-multiplier`, `--retry-max-delay` and
 * `--retry-jitter`, the fields of the library's `retry` enqueue option, each over the handler's policy and
 * the worker's default, field by field.
 *
 * @module
 */
import type { RetryPolicy } from "../../retry.ts";
import { parseDuration, UsageError } from "../args.ts";

/** The options, for `parseCommand`. */
export const RETRY_OPTIONS = {
  "retry-delay": { type: "string" },
  "retry-multiplier": { type: "string" },
  "retry-max-delay": { type: "string" },
  "retry-jitter": { type: "string" },
} as const;

/** Their names, for the options that one task takes and NDJSON does not. */
export const RETRY_FLAGS = Object.keys(RETRY_OPTIONS) as (keyof typeof RETRY_OPTIONS)[];

/** Their lines of `--help`. */
export const RETRY_HELP = `  --retry-delay <duration>
                         This task's wait before its second attempt (default: its handler's, else
                         the worker's, 1s); each further wait is --retry-multiplier times longer
  --retry-multiplier <x> Each wait this many times the one before, a number ≥ 1 (default 2)
  --retry-max-delay <duration>
                         No wait longer than this, --retry-delay's included (default: the handler's,
                         else 5m)
  --retry-jitter <f>     Random spread as a fraction of each wait, 0 to 1: 0.1 is ±10 % (default 0.1)`;

/**
 * The `retry` option the flags give, with only the fields they set; undefined when none is given.
 *
 * @throws {UsageError} naming the flag and what it takes
 */
export function retryFromFlags(
  values: Record<string, string | boolean | undefined>,
): Partial<RetryPolicy> | undefined {
  const text = (name: keyof typeof RETRY_OPTIONS) => values[name] as string | undefined;
  const retry: Partial<RetryPolicy> = {};
  if (text("retry-delay") !== undefined) {
    retry.initialDelayMs = parseDuration("--retry-delay", text("retry-delay")!);
  }
  if (text("retry-max-delay") !== undefined) {
    retry.maxDelayMs = parseDuration("--retry-max-delay", text("retry-max-delay")!);
  }
  if (text("retry-multiplier") !== undefined) {
    retry.multiplier = parseFraction(
      "--retry-multiplier",
      text("retry-multiplier")!,
      1,
      Infinity,
      "a number ≥ 1",
    );
  }
  if (text("retry-jitter") !== undefined) {
    retry.jitter = parseFraction("--retry-jitter", text("retry-jitter")!, 0, 1, "a number from 0 to 1");
  }
  if (
    retry.maxDelayMs !== undefined && retry.initialDelayMs !== undefined &&
    retry.maxDelayMs < retry.initialDelayMs
  ) {
    throw new UsageError(
      `--retry-max-delay (${values["retry-max-delay"]}) is shorter than --retry-delay (${
        values["retry-delay"]
      }).`,
      "No wait is longer than --retry-max-delay; make it at least --retry-delay.",
    );
  }
  return Object.keys(retry).length === 0 ? undefined : retry;
}

/** A plain decimal number within bounds: `2`, `1.5`, `0.25`. */
function parseFraction(flag: string, text: string, min: number, max: number, expected: string): number {
  const value = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) {
    throw new UsageError(
      `Invalid value '${text}' for ${flag}: expected ${expected}, like ${min === 0 ? "0.1" : "1.5"}.`,
    );
  }
  return value;
}
