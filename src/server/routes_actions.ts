/**
 * Actions on tasks (admin): enqueue one or many (checked as `prismq enqueue` checks them: the same fields,
 * the same registry, the same errors), cancel, retry, delete one, retry many by filter, purge.
 *
 * @module
 */
import type { EnqueueItem } from "../enqueue_item.ts";
import { describeJson, TASK_ITEM_FIELDS, taskItemShape } from "../task_item.ts";
import { TERMINAL_STATUSES } from "../task.ts";
import type { TaskStatus } from "../task.ts";
import { onlyFields, readJsonObject } from "./body.ts";
import { ApiError } from "./errors.ts";
import type { Route } from "./route.ts";
import { object, ref, TASK } from "./schemas.ts";
import { taskIdParam } from "./task_id.ts";

/** Most tasks one batch may hold: a batch is one transaction. */
export const MAX_BATCH = 10_000;

/** The task a body describes, its shape checked; `label` names it in a batch. */
function taskItem(value: unknown, label: string): EnqueueItem {
  const shape = taskItemShape(value);
  if ("error" in shape) {
    throw new ApiError(
      400,
      "INVALID_ARGUMENT",
      `${label}: ${shape.error}. A task takes: ${TASK_ITEM_FIELDS.join(", ")}.`,
    );
  }
  return shape.task;
}

function invalid(message: string): ApiError {
  return new ApiError(400, "INVALID_ARGUMENT", message);
}

export const TASK_ACTION_ROUTES: Route[] = [
  {
    method: "POST",
    path: "/api/tasks",
    summary:
      "Enqueue a task, checked as prismq enqueue checks it; a taken idempotency key or a held unique key " +
      "gives the existing task",
    access: "admin",
    body: ref("NewTask"),
    responses: {
      201: { description: "Created", schema: object({ task: TASK, created: { const: true } }) },
      200: {
        description:
          "Its idempotency key was taken or its unique key held: the task holding it, unchanged, " +
          "and which key matched",
        schema: object({
          task: TASK,
          created: { const: false },
          matchedKey: { enum: ["idempotencyKey", "unique"] },
        }),
      },
    },
    async handle(c, { queue, maxBodyBytes }) {
      const item = taskItem(await readJsonObject(c.req.raw, maxBodyBytes), "The task");
      const { task, created, matchedKey } = (await queue.enqueueManyDetailed([item]))[0]!;
      return created ? c.json({ task, created }, 201) : c.json({ task, created, matchedKey }, 200);
    },
  },
  {
    method: "POST",
    path: "/api/tasks/batch",
    summary: "Enqueue many tasks in one transaction: all of them, or none when any is refused",
    access: "admin",
    body: object({ tasks: { type: "array", items: ref("NewTask"), minItems: 1, maxItems: MAX_BATCH } }),
    responses: {
      201: {
        description: "The tasks in the order given, for each whether it was created, and for one that was " +
          "not, which of its keys the task holding it matched",
        schema: object({
          tasks: { type: "array", items: TASK },
          created: { type: "array", items: { type: "boolean" } },
          matchedKeys: { type: "array", items: { enum: ["idempotencyKey", "unique", null] } },
        }),
      },
    },
    async handle(c, { queue, maxBodyBytes }) {
      const body = await readJsonObject(c.req.raw, maxBodyBytes);
      onlyFields(body, ["tasks"]);
      const { tasks } = body;
      if (!Array.isArray(tasks) || tasks.length === 0 || tasks.length > MAX_BATCH) {
        throw invalid(
          `tasks must be an array of 1 to ${MAX_BATCH} tasks; got ${
            Array.isArray(tasks) ? `${tasks.length} tasks` : describeJson(tasks ?? null)
          }.`,
        );
      }
      const items = tasks.map((task, i) => taskItem(task, `Task ${i + 1}`));
      const results = await queue.enqueueManyDetailed(items);
      return c.json({
        tasks: results.map((r) => r.task),
        created: results.map((r) => r.created),
        matchedKeys: results.map((r) => r.matchedKey ?? null),
      }, 201);
    },
  },
  {
    method: "POST",
    path: "/api/tasks/{id}/cancel",
    summary:
      "Cancel a waiting, queued or running task and those waiting on it (a running handler's signal aborts)",
    access: "admin",
    responses: { 200: { description: "The task, cancelled", schema: TASK } },
    refusals: [400, 404, 409],
    async handle(c, { queue }) {
      return c.json(await queue.cancel(taskIdParam(c.req.param("id"))));
    },
  },
  {
    method: "POST",
    path: "/api/tasks/{id}/retry",
    summary: "Queue a failed or cancelled task again, runnable now, its attempts reset",
    access: "admin",
    responses: { 200: { description: "The task, queued", schema: TASK } },
    refusals: [400, 404, 409],
    async handle(c, { queue }) {
      return c.json(await queue.retry(taskIdParam(c.req.param("id"))));
    },
  },
  {
    method: "DELETE",
    path: "/api/tasks/{id}",
    summary:
      "Delete a finished task and its logs (the newest task of all is kept: 409 until a newer one exists)",
    access: "admin",
    responses: { 204: { description: "Deleted" } },
    refusals: [400, 404, 409],
    async handle(c, { queue }) {
      const id = taskIdParam(c.req.param("id"));
      if (!(await queue.delete(id))) {
        throw new ApiError(
          409,
          "TASK_NEWEST_KEPT",
          `Task ${id} is the newest task, which is kept so that its id is never given again; delete it once ` +
            `a newer task exists.`,
        );
      }
      return c.body(null, 204);
    },
  },
  {
    method: "POST",
    path: "/api/tasks/retry",
    summary: "Queue again every failed (or cancelled) task, of one type and queue when given",
    access: "admin",
    body: {
      type: "object",
      additionalProperties: false,
      properties: {
        status: { enum: ["failed", "cancelled"], description: "Default: failed" },
        type: { type: "string" },
        queue: { type: "string" },
      },
    },
    responses: {
      200: { description: "How many went back", schema: object({ retried: { type: "integer" } }) },
    },
    async handle(c, { queue, maxBodyBytes }) {
      const body = await readJsonObject(c.req.raw, maxBodyBytes);
      onlyFields(body, ["status", "type", "queue"]);
      const { status = "failed", type, queue: name } = body;
      if (status !== "failed" && status !== "cancelled") {
        throw invalid(`status must be "failed" or "cancelled"; got ${JSON.stringify(status)}.`);
      }
      for (const [field, value] of [["type", type], ["queue", name]] as const) {
        if (value !== undefined && typeof value !== "string") throw invalid(`${field} must be a string.`);
      }
      const retried = await queue.retryWhere({
        status,
        type: type as string | undefined,
        queue: name as string | undefined,
      });
      return c.json({ retried });
    },
  },
  {
    method: "POST",
    path: "/api/purge",
    summary: "Delete tasks of these statuses that finished more than olderThanMs ago, with their logs",
    access: "admin",
    body: {
      type: "object",
      additionalProperties: false,
      properties: {
        statuses: { type: "array", items: { enum: [...TERMINAL_STATUSES] }, minItems: 1 },
        olderThanMs: { type: "integer", minimum: 0 },
      },
      required: ["statuses", "olderThanMs"],
    },
    responses: {
      200: { description: "How many were deleted", schema: object({ deleted: { type: "integer" } }) },
    },
    async handle(c, { queue, maxBodyBytes }) {
      const body = await readJsonObject(c.req.raw, maxBodyBytes);
      onlyFields(body, ["statuses", "olderThanMs"]);
      const { statuses, olderThanMs } = body;
      // Both required, as prismq purge requires --status and --older-than: deleting is never a default.
      if (
        !Array.isArray(statuses) || statuses.length === 0 || !statuses.every((s) => typeof s === "string")
      ) {
        throw invalid('statuses must be a list of "completed", "failed" or "cancelled": what to delete.');
      }
      if (typeof olderThanMs !== "number") {
        throw invalid("olderThanMs must be a number of milliseconds, 0 or more.");
      }
      return c.json({ deleted: await queue.purge({ statuses: statuses as TaskStatus[], olderThanMs }) });
    },
  },
];
