/**
 * The JSON Schemas of what the API gives and takes, for the OpenAPI document. Times are epoch milliseconds.
 *
 * @module
 */
import { TASK_STATUSES } from "../task.ts";
import type { JsonSchema } from "./route.ts";

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const nullable = (type: string): JsonSchema => ({ type: [type, "null"] });
const time = (description: string): JsonSchema => ({ type: "integer", description });
const counts: JsonSchema = {
  type: "object",
  properties: Object.fromEntries(TASK_STATUSES.map((status) => [status, { type: "integer" }])),
  required: [...TASK_STATUSES],
};

export const TASK = ref("Task");
export const QUEUE = ref("Queue");
export const ERROR = ref("Error");

export const SCHEMAS: Record<string, JsonSchema> = {
  Error: {
    type: "object",
    properties: {
      error: {
        type: "object",
        properties: {
          code: { type: "string", description: "Stable: switch on it, not on the message" },
          message: { type: "string", description: "What is wrong and how to fix it" },
        },
        required: ["code", "message"],
      },
    },
    required: ["error"],
  },
  Task: {
    type: "object",
    properties: {
      id: { type: "integer" },
      type: { type: "string" },
      payload: { description: "The task's JSON payload" },
      status: { enum: [...TASK_STATUSES] },
      priority: { type: "integer", description: "Lower runs first" },
      attempts: { type: "integer" },
      maxAttempts: { type: "integer" },
      errorMessage: nullable("string"),
      idempotencyKey: nullable("string"),
      lockedBy: { ...nullable("string"), description: "The worker that holds, or last held, it" },
      timeoutMs: nullable("integer"),
      runAfter: time("Not claimed before this time"),
      leaseUntil: nullable("integer"),
      createdAt: time("When it was enqueued"),
      updatedAt: time("Its last change"),
      startedAt: nullable("integer"),
      finishedAt: nullable("integer"),
      retryPolicy: { type: ["object", "null"] },
      result: { description: "What its handler returned, once completed; null before" },
      progress: { description: "The last progress its handler reported; null when none" },
      queue: { type: "string" },
    },
    required: [
      "id",
      "type",
      "payload",
      "status",
      "priority",
      "attempts",
      "maxAttempts",
      "queue",
      "createdAt",
    ],
  },
  NewTask: {
    type: "object",
    additionalProperties: false,
    properties: {
      type: { type: "string", description: "A registered task type" },
      payload: { description: "Checked against the type's schema; default {}" },
      priority: { type: "integer", description: "Lower runs first; default 100" },
      runAt: { type: ["string", "integer"], description: "ISO-8601 with a zone, or epoch ms" },
      delayMs: { type: "integer", minimum: 0, description: "Give runAt or delayMs, not both" },
      maxAttempts: { type: "integer", minimum: 1 },
      timeoutMs: { type: "integer", minimum: 1 },
      idempotencyKey: { type: "string", description: "A taken key gives back the existing task" },
      queue: { type: "string", description: "Default: the handler's, else 'default'" },
      retry: {
        type: "object",
        additionalProperties: false,
        properties: {
          initialDelayMs: { type: "integer", minimum: 0 },
          multiplier: { type: "number" },
          maxDelayMs: { type: "integer", minimum: 0 },
          jitter: { type: "number", minimum: 0, maximum: 1 },
        },
        description: "The task's own backoff, over its handler's and the worker's",
      },
      dependsOn: {
        type: "array",
        items: { type: "integer", minimum: 1 },
        description: "Ids of tasks it waits for: it runs once they have all completed",
      },
    },
    required: ["type"],
  },
  Queue: {
    type: "object",
    properties: {
      name: { type: "string" },
      concurrency: { ...nullable("integer"), description: "At most this many running, fleet-wide" },
      rate: { ...nullable("string"), description: "At most this many started per interval: '100/s'" },
      paused: { type: "boolean" },
      queued: { type: "integer" },
      running: { type: "integer" },
      oldestWaitMs: { ...nullable("integer"), description: "The longest-waiting runnable task's wait" },
    },
    required: ["name", "concurrency", "rate", "paused"],
  },
  Worker: {
    type: "object",
    properties: {
      id: { type: "string" },
      host: nullable("string"),
      pid: nullable("integer"),
      startedAt: { type: "integer" },
      heartbeatAt: { type: "integer" },
      concurrency: { type: "integer" },
      handlerTypes: { type: "array", items: { type: "string" } },
    },
    required: ["id", "startedAt", "heartbeatAt"],
  },
  Schedule: {
    type: "object",
    properties: {
      name: { type: "string" },
      linked: { type: "boolean", description: "Whether this server knows its definition" },
      type: nullable("string"),
      cron: nullable("string"),
      timeZone: nullable("string"),
      missed: nullable("string"),
      nextRun: { ...nullable("integer"), description: "When it fires next" },
      since: nullable("integer"),
      lastSlot: { ...nullable("integer"), description: "The last slot fired" },
      lastTaskId: nullable("integer"),
      firedAt: nullable("integer"),
    },
    required: ["name", "linked"],
  },
  Log: {
    type: "object",
    properties: {
      id: { type: "integer" },
      taskId: { type: "integer" },
      at: { type: "integer" },
      level: { enum: ["debug", "info", "warn", "error"] },
      message: { type: "string" },
      details: {},
    },
    required: ["id", "taskId", "at", "level", "message"],
  },
  Stats: {
    type: "object",
    properties: {
      counts,
      byType: { type: "object", additionalProperties: counts },
      oldestQueuedAgeMs: nullable("integer"),
      lastMinute: {
        type: "object",
        properties: { completed: { type: "integer" }, failed: { type: "integer" } },
      },
      queues: { type: "array", items: ref("Queue"), description: "Per queue: queued, running, oldest wait" },
    },
    required: ["counts", "byType", "oldestQueuedAgeMs", "lastMinute", "queues"],
  },
};

/** An object schema with these properties, all required. */
export function object(properties: Record<string, JsonSchema>): JsonSchema {
  return { type: "object", properties, required: Object.keys(properties) };
}

export { ref };
