/**
 * `GET /api/tasks`'s query string as `Queue.list` options: filters, a page size, and the cursor of keyset
 * paging (the id of the last task of the previous page, as text; clients pass `next` back unread).
 *
 * @module
 */
import type { ListOptions } from "../enqueue_item.ts";
import type { PayloadMatch } from "../store/store.ts";
import { ApiError } from "./errors.ts";

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 500;

/** The query parameters `GET /api/tasks` takes, beside `payload.<field>`. */
export const LIST_PARAMETERS = [
  "status",
  "type",
  "queue",
  "createdAfter",
  "createdBefore",
  "limit",
  "cursor",
] as const;

const DIGITS = /^[0-9]{1,16}$/;

/** The list options a query string asks for, with the page size. @throws {ApiError} 400 */
export function listQuery(params: URLSearchParams): ListOptions & { limit: number } {
  const seen = new Set<string>();
  for (const key of params.keys()) {
    if (seen.has(key)) throw bad(`The query parameter '${key}' is given twice; give it once.`);
    seen.add(key);
    if (!key.startsWith("payload.") && !(LIST_PARAMETERS as readonly string[]).includes(key)) {
      throw bad(
        `Unknown query parameter '${key}'. Use ${LIST_PARAMETERS.join(", ")}, or payload.<field>=<value>.`,
      );
    }
  }
  const text = (key: string) => params.get(key) ?? undefined;
  const limit = text("limit") === undefined ? DEFAULT_PAGE : wholeParam("limit", text("limit")!, 1, MAX_PAGE);
  const cursor = text("cursor");
  const payload: PayloadMatch[] = [];
  for (const [key, value] of params) {
    if (key.startsWith("payload.")) {
      payload.push({ path: key.slice("payload.".length).split("."), value: scalar(value) });
    }
  }
  return {
    status: text("status") as ListOptions["status"],
    type: text("type"),
    queue: text("queue"),
    createdAfter: time(text("createdAfter")),
    createdBefore: time(text("createdBefore")),
    payload: payload.length > 0 ? payload : undefined,
    beforeId: cursor === undefined ? undefined : wholeParam("cursor", cursor, 1, Number.MAX_SAFE_INTEGER),
    limit,
  };
}

/**
 * A payload filter's value: JSON when it parses as a string, number, boolean or null (`42`, `"42"`, `true`),
 * else the text itself (`ada`), so that plain words need no quotes.
 */
function scalar(text: string): string | number | boolean | null {
  try {
    const value = JSON.parse(text);
    if (value === null || ["string", "number", "boolean"].includes(typeof value)) return value;
  } catch {
    return text;
  }
  throw bad(`A payload filter matches a string, a number, true, false or null; got '${text}'.`);
}

/** Epoch milliseconds as digits, or ISO-8601 text (checked by the queue). */
function time(text: string | undefined): number | string | undefined {
  if (text === undefined) return undefined;
  return /^-?[0-9]+$/.test(text) ? Number(text) : text;
}

function wholeParam(name: string, text: string, min: number, max: number): number {
  const n = DIGITS.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) {
    throw bad(
      name === "cursor"
        ? `The cursor '${text}' is not one this server gave: pass the 'next' of the previous page as it is.`
        : `${name} must be a whole number from ${min} to ${max}; got '${text}'.`,
    );
  }
  return n;
}

function bad(message: string): ApiError {
  return new ApiError(400, "INVALID_ARGUMENT", message);
}
