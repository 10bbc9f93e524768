/**
 * Actions on named queues (admin): pause, resume, and their fleet-wide limits.
 *
 * @module
 */
import { parseRate, type RateLimit } from "../queue_name.ts";
import { onlyFields, readJsonObject } from "./body.ts";
import { ApiError } from "./errors.ts";
import type { Route } from "./route.ts";
import { QUEUE } from "./schemas.ts";
import { queueJson } from "./routes_overview.ts";

export const QUEUE_ACTION_ROUTES: Route[] = [
  {
    method: "POST",
    path: "/api/queues/{name}/pause",
    summary: "Pause a queue: no worker claims its tasks until it is resumed; running ones finish",
    access: "admin",
    responses: { 200: { description: "The queue's settings", schema: QUEUE } },
    refusals: [400],
    async handle(c, { queue }) {
      return c.json(queueJson(await queue.pauseQueue(c.req.param("name")!)));
    },
  },
  {
    method: "POST",
    path: "/api/queues/{name}/resume",
    summary: "Resume a paused queue",
    access: "admin",
    responses: { 200: { description: "The queue's settings", schema: QUEUE } },
    refusals: [400],
    async handle(c, { queue }) {
      return c.json(queueJson(await queue.resumeQueue(c.req.param("name")!)));
    },
  },
  {
    method: "PUT",
    path: "/api/queues/{name}",
    summary: "Set a queue's fleet-wide limits: null removes one, a field left out keeps its value",
    access: "admin",
    body: {
      type: "object",
      additionalProperties: false,
      properties: {
        concurrency: { type: ["integer", "null"], minimum: 1 },
        rate: {
          type: ["string", "null"],
          description: "'100/s', '5/2m': at most that many started per interval",
        },
      },
    },
    responses: { 200: { description: "The queue's settings", schema: QUEUE } },
    async handle(c, { queue, maxBodyBytes }) {
      const body = await readJsonObject(c.req.raw, maxBodyBytes);
      onlyFields(body, ["concurrency", "rate"]);
      const { concurrency, rate } = body;
      if (rate !== undefined && rate !== null && typeof rate !== "string") {
        throw new ApiError(
          400,
          "INVALID_ARGUMENT",
          "rate must be text like '100/s' or '5/2m', or null for none.",
        );
      }
      const limits: { concurrency?: number | null; rate?: RateLimit | null } = {};
      if (concurrency !== undefined) limits.concurrency = concurrency as number | null;
      if (rate !== undefined) limits.rate = rate === null ? null : parseRate(rate);
      return c.json(queueJson(await queue.setQueueLimits(c.req.param("name")!, limits)));
    },
  },
];
