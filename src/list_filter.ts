/**
 * The checks of `Queue.list`'s options, turned into the store's `ListFilter`: statuses, names, times, payload
 * paths and paging, each refused with a message that names it.
 *
 * @module
 */
import { epochMs, wellFormed, wholeNumber } from "./checks.ts";
import { invalidRange, invalidType } from "./errors.ts";
import type { ListOptions } from "./enqueue_item.ts";
import { parseIsoTime } from "./iso_time.ts";
import { queueName } from "./queue_name.ts";
import type { ListFilter, PayloadMatch } from "./store/store.ts";
import { isTaskStatus } from "./task.ts";

/** Most payload values one list may match: each is a condition the database evaluates per row. */
export const MAX_PAYLOAD_MATCHES = 8;
const SEGMENT = /^[A-Za-z0-9_]{1,64}$/;
const MAX_PATH = 8;

/** The store's filter for these options, each checked. @throws {TypeError | RangeError} */
export function listFilter(options: ListOptions): ListFilter {
  if (typeof options !== "object" || options === null) {
    throw invalidType("The list options must be an object.");
  }
  if (options.status !== undefined && !isTaskStatus(options.status)) {
    throw invalidType(
      `Unknown status '${options.status}'. Use queued, running, completed, failed or cancelled.`,
    );
  }
  return {
    status: options.status,
    type: options.type === undefined ? undefined : wellFormed("type", String(options.type)),
    queue: options.queue === undefined ? undefined : queueName(options.queue),
    createdAfter: listTime("createdAfter", options.createdAfter),
    createdBefore: listTime("createdBefore", options.createdBefore),
    payload: options.payload === undefined ? undefined : payloadMatches(options.payload),
    beforeId: options.beforeId === undefined ? undefined : wholeNumber("beforeId", options.beforeId, 1),
    fromId: options.fromId === undefined ? undefined : wholeNumber("fromId", options.fromId, 1),
    limit: wholeNumber("limit", options.limit ?? 100, 1),
    offset: wholeNumber("offset", options.offset ?? 0, 0),
  };
}

function listTime(name: string, value: Date | number | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const at = value instanceof Date
    ? value.getTime()
    : typeof value === "string"
    ? parseIsoTime(value)
    : value;
  if (typeof at !== "number" || !Number.isFinite(at)) {
    throw invalidRange(
      `${name} must be a Date, epoch milliseconds, or an ISO-8601 time with a zone like ` +
        `2030-01-31T09:00:00Z; got ${JSON.stringify(value)}.`,
    );
  }
  return epochMs(name, Math.round(at));
}

/** Checks each payload match: a path of 1 to 8 keys of letters, digits and '_', and a scalar value. */
export function payloadMatches(matches: readonly PayloadMatch[]): PayloadMatch[] {
  if (!Array.isArray(matches)) throw invalidType("payload must be an array of { path, value }.");
  if (matches.length > MAX_PAYLOAD_MATCHES) {
    throw invalidRange(`At most ${MAX_PAYLOAD_MATCHES} payload filters at once; got ${matches.length}.`);
  }
  return matches.map(({ path, value }) => {
    if (!Array.isArray(path) || path.length === 0 || path.length > MAX_PATH) {
      throw invalidType(`A payload filter's path must be 1 to ${MAX_PATH} keys.`);
    }
    for (const segment of path) {
      if (typeof segment !== "string" || !SEGMENT.test(segment)) {
        throw invalidType(
          `The payload field ${JSON.stringify(path.join("."))} is not one this filter can match: each key ` +
            `must be 1 to 64 letters, digits or '_'.`,
        );
      }
    }
    const scalar = value === null || ["string", "boolean"].includes(typeof value) ||
      (typeof value === "number" && Number.isFinite(value));
    if (!scalar) {
      throw invalidType(
        `The payload filter on '${path.join(".")}' must match a string, a finite number, true, false or ` +
          `null; got ${JSON.stringify(value) ?? typeof value}.`,
      );
    }
    if (typeof value === "string") wellFormed(`The payload filter on '${path.join(".")}'`, value);
    return { path: [...path], value };
  });
}
