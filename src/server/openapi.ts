/**
 * The OpenAPI 3.1 document of the API, written from the same route table the app registers.
 *
 * @module
 */
import { VERSION } from "../version.ts";
import { pathParameters, type Route } from "./route.ts";
import { ERROR, SCHEMAS } from "./schemas.ts";

const REFUSALS: Record<number, string> = {
  400: "Bad input: the message says which value and how to fix it",
  401: "No token, or not one of this server's",
  403: "A read-only token doing an action, or an action from a page of another site",
  404: "No such task",
  409: "The task's status does not allow it",
  413: "The body is over the server's limit, or the payload over the queue's",
  415: "An action's body without Content-Type: application/json",
};

/** The document for `routes`. */
export function openApiDocument(routes: readonly Route[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "PrismQ",
      version: VERSION,
      description: "The HTTP API of `prismq serve`. Times are epoch milliseconds. Errors are " +
        '`{ "error": { "code", "message" } }`. Reads need a read-only or admin token, actions an admin ' +
        "token, when the server has tokens (PRISMQ_READ_TOKENS, PRISMQ_ADMIN_TOKENS).",
    },
    components: {
      schemas: SCHEMAS,
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    },
    security: [{ bearer: [] }],
    paths,
  };
}

function operation(route: Route): Record<string, unknown> {
  const parameters = [
    ...pathParameters(route.path).map((name) => ({
      name,
      in: "path",
      required: true,
      schema: name === "id" ? { type: "string", pattern: "^[1-9][0-9]*$" } : { type: "string" },
    })),
    ...(route.query ?? []).map(({ name, description, schema }) => ({
      name,
      in: "query",
      description,
      schema,
    })),
  ];
  const refusals = new Set(route.refusals ?? []);
  if (route.access !== "public") refusals.add(401);
  if (route.access === "admin") refusals.add(403);
  if (route.body) [400, 413, 415].forEach((status) => refusals.add(status));
  const responses: Record<string, unknown> = {};
  for (const [status, { description, schema }] of Object.entries(route.responses)) {
    responses[status] = schema
      ? { description, content: { "application/json": { schema } } }
      : { description };
  }
  for (const status of [...refusals].sort()) {
    responses[status] = { description: REFUSALS[status], content: { "application/json": { schema: ERROR } } };
  }
  return {
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    operationId: `${route.method.toLowerCase()}${
      route.path.replace(/[{}]/g, "").replace(/\/(\w)/g, (_, c) => c.toUpperCase())
    }`,
    ...(route.access === "public" ? { security: [] } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(route.body
      ? { requestBody: { required: true, content: { "application/json": { schema: route.body } } } }
      : {}),
    responses,
    "x-prismq-access": route.access,
  };
}
