/**
 * Checks of the values callers pass in (options, durations, times, names), each refusing with an error that
 * names the value and says what is allowed. Every check happens before anything is written, so that a
 * value the store or the runtime would mangle (a REAL where an integer belongs, a timer of 2^31 ms that
 * fires at once, a string that is not valid Unicode) never gets that far.
 *
 * @module
 */

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
 * `value`, when it is a whole number from `min` to `max`.
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
  if (typeof value !== "number") {
    throw new TypeError(`${name} must be a number, got ${value === null ? "null" : typeof value}.`);
  }
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new RangeError(`${name} must be a whole number ${range}, got ${show(value)}.`);
  }
  return value;
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
    throw new RangeError(
      `${name} must be at most ${MAX_DURATION_MS} ms (100 years), got ${value}` +
        (options.infinite ? "; pass Infinity for no limit." : "."),
    );
  }
  return wholeNumber(`${name} (milliseconds)`, value, min, MAX_DURATION_MS);
}

/** `value`, a time in whole epoch milliseconds within the range of a `Date` (years −271821 to 275760). */
export function epochMs(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || Math.abs(value) > MAX_EPOCH_MS) {
    throw new RangeError(
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
    throw new TypeError(
      `${name} is not well-formed Unicode: it holds a lone surrogate (${describeSurrogate(text)}). ` +
        `Pass text that can be written as UTF-8.`,
    );
  }
  return text;
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
