/**
 * Reads of tasks: a filtered page of the list (keyset paging by id, newest first), one task, its logs.
 *
 * @module
 */
import { TASK_STATUSES } from "../task.ts";
import { ApiError } from "./errors.ts";
import { DEFAULT_PAGE, listQuery, MAX_PAGE } from "./list_query.ts";
import { MAX_SCANNED_IDS, scanPage } from "./list_scan.ts";
import type { Route } from "./route.ts";
import { object, ref, TASK } from "./schemas.ts";
import { taskIdParam } from "./task_id.ts";

export const TASK_READ_ROUTES: Route[] = [
  {
    method: "GET",
    path: "/api/tasks",
    summary: "Tasks, newest first, filtered; pass `next` back as `cursor` for the next page",
    description:
      `Each request looks at ${MAX_SCANNED_IDS.toLocaleString("en")} task ids at most, so that a ` +
      "rare filter costs no more than a common one: a page may then hold fewer tasks than the limit, or " +
      "none, with a `next` that goes on from where it stopped. Follow `next` until it is null.",
    access: "read",
    query: [
      { name: "status", description: "One status", schema: { enum: [...TASK_STATUSES] } },
      { name: "type", description: "One task type", schema: { type: "string" } },
      { name: "queue", description: "One named queue", schema: { type: "string" } },
      {
        name: "createdAfter",
        description: "Created strictly after: epoch ms or ISO-8601 with a zone",
        schema: { type: "string" },
      },
      { name: "createdBefore", description: "Created strictly before", schema: { type: "string" } },
      {
        name: "payload.<field>",
        description: "The payload's value at a field (a.b for nested ones): JSON (42, true, null, " +
          '"42") or else a plain string; up to 8 such filters, all of which must match',
        schema: { type: "string" },
      },
      {
        name: "limit",
        description: `Tasks per page, 1 to ${MAX_PAGE} (default ${DEFAULT_PAGE})`,
        schema: { type: "integer", minimum: 1, maximum: MAX_PAGE },
      },
      { name: "cursor", description: "The `next` of the previous page", schema: { type: "string" } },
    ],
    responses: {
      200: {
        description: "A page of tasks, and the cursor of the next page (null on the last one)",
        schema: object({ tasks: { type: "array", items: TASK }, next: { type: ["string", "null"] } }),
      },
    },
    refusals: [400],
    async handle(c, { queue }) {
      return c.json(await scanPage(queue, listQuery(new URL(c.req.url).searchParams)));
    },
  },
  {
    method: "GET",
    path: "/api/tasks/{id}",
    summary: "One task: payload, status, attempts, error, result, progress, queue, dependencies both ways",
    access: "read",
    responses: {
      200: {
        description: "The task, with the ids of the tasks it waits for and of those waiting for it",
        schema: {
          allOf: [TASK, {
            type: "object",
            properties: {
              dependsOn: { type: "array", items: { type: "integer" }, description: "At most 1,000" },
              dependents: { type: "array", items: { type: "integer" }, description: "At most 1,000" },
            },
            required: ["dependsOn", "dependents"],
          }],
        },
      },
    },
    refusals: [400, 404],
    async handle(c, { queue }) {
      const id = taskIdParam(c.req.param("id"));
      const task = await queue.get(id);
      if (!task) throw new ApiError(404, "TASK_NOT_FOUND", `No task with id ${id}.`);
      return c.json({ ...task, ...await queue.dependencies(id) });
    },
  },
  {
    method: "GET",
    path: "/api/tasks/{id}/logs",
    summary: "A task's log lines, oldest first",
    access: "read",
    responses: {
      200: { description: "Its log lines", schema: object({ logs: { type: "array", items: ref("Log") } }) },
    },
    refusals: [400, 404],
    async handle(c, { queue }) {
      const id = taskIdParam(c.req.param("id"));
      const [task, logs] = await Promise.all([queue.get(id), queue.logs(id)]);
      if (!task) throw new ApiError(404, "TASK_NOT_FOUND", `No task with id ${id}.`);
      return c.json({ logs });
    },
  },
];
