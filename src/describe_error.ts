/**
 * What a failed attempt records as its error: a readable line for whatever a handler threw, and never an
 * exception of its own. A handler can throw anything: a BigInt, a circular object, an object whose getters
 * throw, a Proxy, an Error whose `name` getter throws. Describing it must not fail, or the worker would
 * lose the outcome (and the next worker to run the task would fail the same way).
 *
 * @module
 */

import { toWellFormed } from "./checks.ts";
import { LeaseLostError, NonRetryableError } from "./errors.ts";

/** Longest error kept, in UTF-16 code units; the rest is cut with an ellipsis. */
export const MAX_ERROR_LENGTH = 8000;

/**
 * A line describing `error`, at most {@link MAX_ERROR_LENGTH} long (and never cut inside a surrogate pair),
 * well-formed Unicode (a lone surrogate becomes U+FFFD). Never throws.
 */
export function describeError(error: unknown): string {
  let text: string;
  try {
    text = describe(error);
  } catch {
    text = fallback(error);
  }
  if (typeof text !== "string" || text === "") text = fallback(error);
  if (text.length > MAX_ERROR_LENGTH) {
    const end = isHighSurrogate(text.charCodeAt(MAX_ERROR_LENGTH - 1))
      ? MAX_ERROR_LENGTH - 1
      : MAX_ERROR_LENGTH;
    text = text.slice(0, end) + "…";
  }
  return toWellFormed(text);
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const name = attempt(() => error.name);
    const message = attempt(() => error.message) ?? "";
    const text = typeof message === "string" ? message : describeValue(message);
    // "Error", and the names of errors whose messages say it all, add nothing.
    const plain = name === "Error" || isInstance(error, NonRetryableError) ||
      isInstance(error, LeaseLostError);
    if (typeof name !== "string" || name === "" || plain || text.startsWith(name)) {
      return text || (typeof name === "string" && name !== "" ? name : "Error");
    }
    return text === "" ? name : `${name}: ${text}`;
  }
  return describeValue(error);
}

/** A value that is not an Error: a string as is, anything else as JSON where it can be. */
function describeValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "bigint") return `${value}n`;
  if (value === undefined || typeof value === "function" || typeof value === "symbol") return String(value);
  const seen = new WeakSet<object>();
  const json = JSON.stringify(value, (_key, item: unknown) => {
    if (typeof item === "bigint") return `${item}n`;
    if (typeof item === "object" && item !== null) {
      if (seen.has(item)) return "[circular]";
      seen.add(item);
    }
    return item;
  });
  return json ?? String(value);
}

/** `value instanceof type`, false where asking throws (a Proxy may). */
// deno-lint-ignore no-explicit-any
export function isInstance(value: unknown, type: abstract new (...args: any[]) => unknown): boolean {
  return attempt(() => value instanceof type) === true;
}

/** The value of `read()`, or undefined when reading throws. */
function attempt<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** What is left when a value cannot be described at all: its kind. */
function fallback(error: unknown): string {
  const tag = attempt(() => Object.prototype.toString.call(error));
  return `The handler threw a value that cannot be described (${tag ?? typeof error}).`;
}
