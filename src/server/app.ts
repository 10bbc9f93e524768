/**
 * The server as a web-standard handler, `(Request) => Promise<Response>`, on Hono: the API's routes (one
 * table: `routes_*.ts`), their security checks, the OpenAPI document, and the dashboard's mount point.
 * Nothing here listens: a Deno, Bun or Node app mounts the handler, and `prismq serve` listens at its edge.
 *
 * @module
 */
import { Hono } from "hono";
import type { QueueDatabase } from "../database.ts";
import { wholeNumber } from "../checks.ts";
import { Queue } from "../queue.ts";
import type { TaskHandlerRegistry } from "../registry.ts";
import { ApiError, errorResponse } from "./errors.ts";
import { openApiDocument } from "./openapi.ts";
import { honoPath, type Route, type RouteContext } from "./route.ts";
import { METRICS_ROUTES } from "./routes_metrics.ts";
import { OVERVIEW_ROUTES } from "./routes_overview.ts";
import { TASK_READ_ROUTES } from "./routes_tasks.ts";
import { TASK_ACTION_ROUTES } from "./routes_actions.ts";
import { QUEUE_ACTION_ROUTES } from "./routes_queues.ts";
import { securityChecks, type SecurityEnv } from "./security.ts";
import { parseTokenList } from "./tokens.ts";

/** The default limit of a request body: 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** How a {@link createHttpHandler} server behaves. */
export interface HttpServerOptions {
  /**
   * The handlers (and schedules) the server knows: enqueues of other types are refused, naming the
   * registered ones, and payloads are checked against each type's schema. Without it, any type is taken.
   */
  registry?: TaskHandlerRegistry | undefined;
  /** Bearer tokens that may read and act. With no token at all, every request may (loopback only!). */
  adminTokens?: readonly string[] | undefined;
  /** Bearer tokens that may only read. */
  readTokens?: readonly string[] | undefined;
  /** The largest request body read, in bytes. @default 1048576 */
  maxBodyBytes?: number | undefined;
  /** The largest task payload, in bytes of JSON (see `Queue`). @default 1048576 */
  maxPayloadBytes?: number | undefined;
  /**
   * The dashboard: answers `GET /` and `GET /assets/*`, or gives undefined for a path it does not serve
   * (then 404). No token is needed to load it; the page sends the user's token to the API itself.
   */
  dashboard?: ((request: Request) => Response | undefined | Promise<Response | undefined>) | undefined;
  /** Told of every error answered 500 (a bug, or the database failing). @default console.error */
  onError?: ((error: unknown) => void) | undefined;
}

/** Every route of the API, but the OpenAPI document's own. */
export const API_ROUTES: readonly Route[] = [
  ...OVERVIEW_ROUTES,
  ...TASK_READ_ROUTES,
  ...TASK_ACTION_ROUTES,
  ...QUEUE_ACTION_ROUTES,
  ...METRICS_ROUTES,
];

/**
 * The Hono app of the server, with the table of its API routes (the OpenAPI document's included).
 *
 * @throws {TypeError | RangeError} for an option that cannot be used, such as a token shorter than 16
 */
export function createServerApp(
  db: QueueDatabase,
  options: HttpServerOptions = {},
): { app: Hono<SecurityEnv>; routes: readonly Route[] } {
  const maxBodyBytes = wholeNumber("maxBodyBytes", options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, 1);
  const tokens = {
    admin: parseTokenList("adminTokens", (options.adminTokens ?? []).join(",")),
    read: parseTokenList("readTokens", (options.readTokens ?? []).join(",")),
  };
  const report = options.onError ?? ((error: unknown) => console.error("prismq server:", error));
  const context: RouteContext = {
    db,
    queue: new Queue(db, { registry: options.registry, maxPayloadBytes: options.maxPayloadBytes }),
    schedules: options.registry?.getSchedules() ?? [],
    maxBodyBytes,
  };
  const document = { value: undefined as Record<string, unknown> | undefined };
  const openApiRoute: Route = {
    method: "GET",
    path: "/api/openapi.json",
    summary: "This document",
    access: "public",
    responses: { 200: { description: "The OpenAPI 3.1 document of this server" } },
    handle: (c) => Promise.resolve(c.json(document.value)),
  };
  const routes = [...API_ROUTES, openApiRoute];
  document.value = openApiDocument(routes);

  const app = new Hono<SecurityEnv>();
  app.use("*", async (c, next) => {
    await next();
    // API answers are data, never a page to render or to keep.
    c.header("X-Content-Type-Options", "nosniff");
    if (c.req.path.startsWith("/api/")) c.header("Cache-Control", "no-store");
  });
  const checks = securityChecks(tokens, maxBodyBytes);
  app.use("/api/*", async (c, next) => {
    if (c.req.path === openApiRoute.path && c.req.method === "GET") return await next();
    return await checks(c, next);
  });
  app.use("/metrics", checks);
  for (const route of routes) {
    app.on(route.method, honoPath(route.path), (c) => route.handle(c, context));
  }
  if (options.dashboard) mountDashboard(app, options.dashboard);
  app.notFound((c) => {
    const allowed = routes.filter((route) => matches(route.path, c.req.path)).map((route) => route.method);
    if (allowed.length > 0) {
      c.header("Allow", allowed.join(", "));
      return errorResponse(
        new ApiError(
          405,
          "METHOD_NOT_ALLOWED",
          `${c.req.method} is not allowed here; use ${allowed.join(" or ")}.`,
        ),
        report,
      );
    }
    return errorResponse(
      new ApiError(
        404,
        "ROUTE_NOT_FOUND",
        "No such route. The API's routes are listed at /api/openapi.json.",
      ),
      report,
    );
  });
  app.onError((error) => errorResponse(error, report));
  return { app, routes };
}

/** The dashboard's page at `/` and its files under `/assets/`: no token needed to load them. */
function mountDashboard(
  app: Hono<SecurityEnv>,
  dashboard: NonNullable<HttpServerOptions["dashboard"]>,
): void {
  const serve = async (c: { req: { raw: Request } }, next: () => Promise<void>) =>
    (await dashboard(c.req.raw)) ?? await next();
  app.get("/", serve as never);
  app.get("/assets/*", serve as never);
}

function matches(path: string, actual: string): boolean {
  return new RegExp(`^${path.replace(/\{\w+\}/g, "[^/]+")}$`).test(actual);
}

/**
 * The PrismQ HTTP API as a web-standard handler: mount it in a Deno, Bun or Node server (`Deno.serve`,
 * `Bun.serve`, or a framework that takes `(Request) => Response`). The routes and their rules are in the
 * README's "Server and HTTP API" section, and in the OpenAPI document the handler serves at
 * `/api/openapi.json`.
 *
 * Without tokens, every request may read and act: listen on a loopback address only. `prismq serve`
 * refuses any other address without a token.
 *
 * @example
 * ```ts
 * import { createHttpHandler, QueueDatabase } from "prismq";
 * const db = new QueueDatabase(":memory:");
 * await db.initializeSchema();
 * const handler = createHttpHandler(db, { adminTokens: ["an-admin-token-of-16+-chars"] });
 * const response = await handler(new Request("http://127.0.0.1/api/stats", {
 *   headers: { authorization: "Bearer an-admin-token-of-16+-chars" },
 * }));
 * response.status; // 200
 * await db.close();
 * ```
 *
 * @param db an open database, whose schema is initialized
 * @param options tokens, limits, the registry of task types, the dashboard
 * @returns the handler
 * @throws {TypeError | RangeError} for an option that cannot be used, such as a token shorter than 16
 */
export function createHttpHandler(
  db: QueueDatabase,
  options: HttpServerOptions = {},
): (request: Request) => Promise<Response> {
  const { app } = createServerApp(db, options);
  return async (request) => await app.fetch(request);
}
