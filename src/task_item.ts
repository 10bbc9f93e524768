/**
 * The shape of one task given as JSON, `{ "type": …, "payload": …, …options }`: what an NDJSON line of
 * `prismq enqueue --ndjson` and the body of `POST /api/tasks` hold. Strict, so that a misspelt field is
 * reported instead of ignored; the queue checks the values when it writes.
 *
 * @module
 */
import * as v from "valibot";
import type { EnqueueItem } from "./enqueue_item.ts";

/** What one task given as JSON may hold. */
const TaskItem = v.strictObject({
  type: v.string(),
  payload: v.optional(v.unknown()),
  priority: v.optional(v.number()),
  delayMs: v.optional(v.number()),
  runAt: v.optional(v.union([v.string(), v.number()])),
  maxAttempts: v.optional(v.number()),
  // Its fields are checked by the queue, which names the one at fault.
  retry: v.optional(v.record(v.string(), v.number())),
  idempotencyKey: v.optional(v.string()),
  timeoutMs: v.optional(v.number()),
  queue: v.optional(v.string()),
  dependsOn: v.optional(v.array(v.number())),
  // Its scope is checked by the queue, which says what is wrong with it.
  unique: v.optional(v.strictObject({
    key: v.string(),
    while: v.optional(v.string()),
    forMs: v.optional(v.number()),
  })),
});

/** The fields a task given as JSON may have, in the order the schema lists them. */
export const TASK_ITEM_FIELDS: readonly string[] = Object.keys(TaskItem.entries);

/**
 * Whether a parsed value is the usual `{"type": "…", "payload": …}`, which the schema accepts as it is:
 * checked here directly, since valibot would cost about as much as parsing the line. Anything else goes
 * through the schema, which also words the errors.
 */
function isPlainItem(parsed: unknown): parsed is EnqueueItem {
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return false;
  for (const key in parsed) {
    if (key !== "type" && key !== "payload") return false;
  }
  return typeof (parsed as { type?: unknown }).type === "string";
}

/** The task `parsed` describes, checked for its shape only; or what is wrong with it, in words. */
export function taskItemShape(parsed: unknown): { task: EnqueueItem } | { error: string } {
  if (isPlainItem(parsed)) return { task: parsed };
  const shape = v.safeParse(TaskItem, parsed);
  if (!shape.success) {
    const issue = shape.issues[0];
    const path = v.getDotPath(issue);
    if (!path) return { error: `expected a JSON object with a "type", got ${describeJson(parsed)}` };
    // Valibot reports a missing and an unknown key alike; "never" marks the unknown one.
    if (issue.type === "strict_object") {
      return { error: issue.expected === "never" ? `unknown field '${path}'` : `missing field '${path}'` };
    }
    return { error: `${path}: ${issue.message}` };
  }
  return { task: shape.output as EnqueueItem };
}

/** "null", "an array", "an object", "a string": what a JSON value is, for messages. */
export function describeJson(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}
