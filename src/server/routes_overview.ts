/**
 * Reads of the whole queue: statistics, workers, named queues, schedules.
 *
 * @module
 */
import { formatRate } from "../queue_name.ts";
import { describeSchedules } from "../schedule_views.ts";
import type { QueueInfo, QueueSettings } from "../store/store.ts";
import type { Route } from "./route.ts";
import { object, ref } from "./schemas.ts";

/** A queue as the API gives it: its rate in the words the API takes (`100/s`). */
export function queueJson<T extends QueueSettings | QueueInfo>(
  queue: T,
): Omit<T, "rate"> & { rate: string | null } {
  return { ...queue, rate: queue.rate === null ? null : formatRate(queue.rate) };
}

export const OVERVIEW_ROUTES: Route[] = [
  {
    method: "GET",
    path: "/api/stats",
    summary: "Counts per status and per type, the oldest wait, the last minute's outcomes, and each queue",
    access: "read",
    responses: { 200: { description: "The statistics", schema: ref("Stats") } },
    async handle(c, { queue }) {
      const [stats, queues] = await Promise.all([queue.stats(), queue.listQueues()]);
      return c.json({ ...stats, queues: queues.map(queueJson) });
    },
  },
  {
    method: "GET",
    path: "/api/workers",
    summary: "Workers that have registered, with their last heartbeat",
    access: "read",
    responses: {
      200: {
        description: "The workers",
        schema: object({ workers: { type: "array", items: ref("Worker") } }),
      },
    },
    async handle(c, { queue }) {
      return c.json({ workers: await queue.workers() });
    },
  },
  {
    method: "GET",
    path: "/api/queues",
    summary: "Named queues: depth, running, limits, paused, oldest wait",
    access: "read",
    responses: {
      200: { description: "The queues", schema: object({ queues: { type: "array", items: ref("Queue") } }) },
    },
    async handle(c, { queue }) {
      return c.json({ queues: (await queue.listQueues()).map(queueJson) });
    },
  },
  {
    method: "GET",
    path: "/api/schedules",
    summary: "Schedules: the server's definitions with their next run, and what the database keeps",
    access: "read",
    responses: {
      200: {
        description: "The schedules, by name",
        schema: object({ schedules: { type: "array", items: ref("Schedule") } }),
      },
    },
    async handle(c, { queue, schedules }) {
      return c.json({ schedules: describeSchedules(schedules, await queue.schedules(), Date.now()) });
    },
  },
];
