/**
 * Checks of the values callers pass in (options, durations, times, names), each refusing with an error that
 * names the value and says what is allowed. Every check happens before anything is written, so that a
 * value the store or the runtime would mangle (a REAL where an integer belongs, a timer of 2^31 ms that
 * fires at once, a string that is not valid Unicode) never gets that far.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import type { TaskHandlerRegistry } from "./registry.ts";
import { invalidRange, invalidType } from "./errors.ts";

/** The longest duration accepted anywhere: 100 years, in milliseconds. */
export const MAX_DURATION_MS = 100 * 365 * 86_400_000;

/** The latest (and, negated, the earliest) time a `Date` can hold, in epoch milliseconds. */
export const MAX_EPOCH_MS = 8.64e15;

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  return String(value);
}

/**
 * Whether `value` is a whole number from `min` to `max`: the one rule for integers, in the library's checks
 * and the command line's options alike.
 */
export function isWholeNumber(value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): value is number {
  return Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max;
}

/**
 * The range {@link isWholeNumber} accepts, in words: `a whole number from 1 to 1000`, or for a range with no
 * upper end short of 2^53 − 1 that starts at 0 or above, `a whole number ≥ 1`.
 */
export function wholeNumberRange(min: number, max = Number.MAX_SAFE_INTEGER): string {
  return `a whole number ${
    max === Number.MAX_SAFE_INTEGER && min >= 0 ? `≥ ${min}` : `from ${min} to ${max}`
  }`;
}

/**
 * `value`, when it is a whole number from `min` to `max`; see {@link isWholeNumber}.
 *
 * @throws {TypeError} when it is not a number
 * @throws {RangeError} when it is not whole (Infinity is not), or out of range
 */
export function wholeNumber(
  name: string,
  value: unknown,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  // The message is built only for a value that fails: it turns two numbers into text, on every enqueue.
  if (isWholeNumber(value, min, max)) return value;
  if (typeof value !== "number") {
    throw invalidType(`${name} must be ${wholeNumberRange(min, max)}, got ${kindOf(value)}.`);
  }
  throw invalidRange(`${name} must be ${wholeNumberRange(min, max)}, got ${show(value)}.`);
}

/**
 * `value`, a duration in whole milliseconds from `min` to {@link MAX_DURATION_MS}; with `infinite`, also
 * `Infinity` (for "no limit").
 */
export function duration(
  name: string,
  value: unknown,
  min = 0,
  options: { infinite?: boolean } = {},
): number {
  if (options.infinite && value === Infinity) return value;
  if (typeof value === "number" && Number.isSafeInteger(value) && value > MAX_DURATION_MS) {
    throw invalidRange(
      `${name} must be at most ${MAX_DURATION_MS} ms (100 years), got ${value}` +
        (options.infinite ? "; pass Infinity for no limit." : "."),
    );
  }
  return wholeNumber(`${name} (milliseconds)`, value, min, MAX_DURATION_MS);
}

/** `value`, a time in whole epoch milliseconds within the range of a `Date` (years −271821 to 275760). */
export function epochMs(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || Math.abs(value) > MAX_EPOCH_MS) {
    throw invalidRange(
      `${name} must be a time within the range of a Date (±${MAX_EPOCH_MS} ms from 1970), got ${
        show(value)
      }.`,
    );
  }
  return value;
}

/** A UTF-16 surrogate without its partner: text that has no UTF-8 form. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * `text`, when it is well-formed Unicode. A lone surrogate has no UTF-8 form: engines store it as invalid
 * bytes or replace it, so two different keys could become one.
 */
export function wellFormed(name: string, text: string): string {
  if (LONE_SURROGATE.test(text)) {
    throw invalidType(
      `${name} is not well-formed Unicode: it holds a lone surrogate (${describeSurrogate(text)}). ` +
        `Pass text that can be written as UTF-8.`,
    );
  }
  return text;
}

const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, "g");

/**
 * `text` with every lone surrogate replaced by U+FFFD, as a UTF-8 encoder replaces it: for text that is
 * kept rather than refused (a handler's error, its log lines), which would otherwise be stored as bytes
 * that are not UTF-8 and read back as three U+FFFD, or not at all.
 */
export function toWellFormed(text: string): string {
  return LONE_SURROGATE.test(text) ? text.replace(LONE_SURROGATES, "\ufffd") : text;
}

function describeSurrogate(text: string): string {
  const index = text.search(LONE_SURROGATE);
  return `\\u${text.charCodeAt(index).toString(16)} at index ${index}`;
}

/**
 * Whether JSON text written by `JSON.stringify` holds a lone surrogate: it writes those as `\u` escapes
 * (and nothing else at or above U+D800 as an escape), so the text itself stays well-formed. A pair written
 * as two escapes (by another writer) is not lone.
 */
export function jsonHasLoneSurrogate(json: string): boolean {
  if (!json.includes("\\u")) return false;
  // A \u escape of a surrogate, after an even number of backslashes (so an escape itself).
  const escape = /(?<!\\)(?:\\\\)*\\u([dD][89a-fA-F][0-9a-fA-F]{2})/g;
  for (let match = escape.exec(json); match; match = escape.exec(json)) {
    // A low half not right after a high one.
    if (parseInt(match[1]!, 16) >= 0xdc00) return true;
    const end = match.index + match[0].length;
    if (!/^\\u[dD][c-fC-F][0-9a-fA-F]{2}/.test(json.slice(end, end + 6))) return true;
    escape.lastIndex = end + 6;
  }
  return false;
}

/** What `value` is, for a message: `null`, `a string`, `an object`, `a Map`, `an AbortController`. */
export function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  let kind: string = typeof value;
  if (kind === "object") {
    let name: unknown;
    try {
      name = Array.isArray(value) ? "array" : Object.getPrototypeOf(value)?.constructor?.name;
    } catch {
      // A Proxy may refuse; "an object" says enough.
    }
    kind = typeof name === "string" && name !== "" && name !== "Object" ? name : "object";
  }
  return `${/^[aeiou]/i.test(kind) ? "an" : "a"} ${kind}`;
}

/**
 * `value`, when it is a clock: an object with a `now()` method and, if any, an `elapsed()` method.
 *
 * @throws {TypeError} naming the option and what was given
 */
export function clockOption(name: string, value: unknown): Clock {
  const clock = value as Partial<Clock> | null;
  if (
    typeof clock !== "object" || clock === null || typeof clock.now !== "function" ||
    (clock.elapsed !== undefined && typeof clock.elapsed !== "function")
  ) {
    throw invalidType(
      `${name} must be a { now(), elapsed?() } object, got ${kindOf(value)}. Pass a ManualClock, or leave ` +
        `it out for the system clock.`,
    );
  }
  return clock as Clock;
}

/**
 * `value`, when it is a handler registry (a `TaskHandlerRegistry`, or an object with its
 * `getHandlerInfo()` and `getRegisteredTypes()`, such as one from another copy of PrismQ).
 *
 * @throws {TypeError} naming the option and what was given
 */
export function registryOption(name: string, value: unknown): TaskHandlerRegistry {
  const registry = value as Partial<TaskHandlerRegistry> | null;
  if (
    typeof registry !== "object" || registry === null || typeof registry.getHandlerInfo !== "function" ||
    typeof registry.getRegisteredTypes !== "function"
  ) {
    throw invalidType(
      `${name} must be a TaskHandlerRegistry, got ${kindOf(value)}. Create one with ` +
        `new TaskHandlerRegistry() and register handlers on it, or leave it out.`,
    );
  }
  return registry as TaskHandlerRegistry;
}

/**
 * `value`, when it is an `AbortSignal` (or an object that works as one).
 *
 * @throws {TypeError} naming the option and what was given
 */
export function abortSignalOption(name: string, value: unknown): AbortSignal {
  const signal = value as Partial<AbortSignal> | null;
  if (
    typeof signal !== "object" || signal === null || typeof signal.aborted !== "boolean" ||
    typeof signal.addEventListener !== "function" || typeof signal.removeEventListener !== "function"
  ) {
    throw invalidType(
      `${name} must be an AbortSignal, got ${kindOf(value)}` +
        (value instanceof AbortController ? ": pass its .signal." : ". Pass an AbortController's .signal."),
    );
  }
  return signal as AbortSignal;
}
