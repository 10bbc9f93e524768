/**
 * A handler's result and progress as the JSON text the store keeps, checked as payloads are: written by
 * `JSON.stringify` (so `toJSON` is honoured), well-formed Unicode, and no larger than the worker's
 * `maxResultBytes`. A value that fails is refused with a message saying what to return instead, never
 * dropped without a word.
 *
 * @module
 */
import { jsonHasLoneSurrogate } from "../checks.ts";
import { invalidRange, invalidType } from "../errors.ts";

const encoder = new TextEncoder();

/**
 * `value` as JSON text to store.
 *
 * @param what how to name the value in an error: `The result of task 7`
 * @throws {TypeError} when it cannot be written as JSON (a BigInt, a cycle, a function) or holds a lone
 *   surrogate
 * @throws {RangeError} when its JSON is over `maxBytes` bytes of UTF-8
 */
export function storedJson(what: string, value: unknown, maxBytes: number): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw invalidType(`${what} cannot be written as JSON: ${describeCause(error)}. Return plain JSON data.`);
  }
  if (json === undefined) {
    throw invalidType(
      `${what} cannot be written as JSON (it is a ${typeof value}). Return plain JSON data, or nothing.`,
    );
  }
  if (jsonHasLoneSurrogate(json)) {
    throw invalidType(
      `${what} is not well-formed Unicode: a string in it holds a lone surrogate, which has no UTF-8 form.`,
    );
  }
  // Most values are far below the limit in UTF-16 units already; only encode when it could matter.
  if (json.length * 3 > maxBytes) {
    const size = encoder.encode(json).length;
    if (size > maxBytes) {
      throw invalidRange(
        `${what} is ${size} bytes of JSON, over the limit of ${maxBytes} (the worker's maxResultBytes). ` +
          `Store large data elsewhere and return a reference to it.`,
      );
    }
  }
  return json;
}

function describeCause(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    return "JSON.stringify threw";
  }
}
