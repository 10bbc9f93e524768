/**
 * One route of the API as data: its method and path, who may call it, what it takes and gives (the OpenAPI
 * document is written from these), and the function that answers it. The app registers exactly these, so
 * the document and the server cannot drift apart unnoticed (`tests/server_openapi_test.ts` checks both ways).
 *
 * @module
 */
import type { Context } from "hono";
import type { QueueDatabase } from "../database.ts";
import type { Queue } from "../queue.ts";
import type { ScheduleDefinition } from "../schedule.ts";
import type { SecurityEnv } from "./security.ts";

/** A JSON Schema (OpenAPI 3.1's dialect), as a plain object. */
export type JsonSchema = Record<string, unknown>;

/** What every route's answer function gets besides the request. */
export interface RouteContext {
  db: QueueDatabase;
  queue: Queue;
  /** The schedules the server knows the definitions of, for their next runs. */
  schedules: readonly ScheduleDefinition[];
  maxBodyBytes: number;
}

export interface Route {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** OpenAPI's form, `/api/tasks/{id}`; registered with Hono as `/api/tasks/:id`. */
  path: string;
  summary: string;
  /** More than the summary says, when there is more to say. */
  description?: string;
  /** `public`: no token needed; `read`: a read-only or admin token; `admin`: an admin token. */
  access: "public" | "read" | "admin";
  /** The query parameters, each with its schema and what it does. */
  query?: { name: string; description: string; schema: JsonSchema }[];
  /** The JSON body's schema, when the route takes one. */
  body?: JsonSchema;
  /** The answers on success, by status: what each holds. */
  responses: Record<number, { description: string; schema?: JsonSchema }>;
  /** The refusals it can answer with besides the ones every route of its access has. */
  refusals?: number[];
  handle(c: Context<SecurityEnv>, context: RouteContext): Promise<Response>;
}

/** A path's `{name}` parameters. */
export function pathParameters(path: string): string[] {
  return [...path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]!);
}

/** Hono's form of an OpenAPI path: `{id}` becomes `:id`. */
export function honoPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, ":$1");
}
