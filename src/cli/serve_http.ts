/**
 * What `prismq serve` and `prismq run --serve` share: their options' checks (the address, the body limit,
 * the tokens of the environment, and the rule that only loopback goes without a token), and starting the
 * API's server on an open database.
 *
 * @module
 */
import type { HandlerDefinition, QueueDatabase, ScheduleDefinition } from "../../mod.ts";
import { createHttpHandler, DEFAULT_MAX_BODY_BYTES } from "../server/app.ts";
import { dashboardResponse } from "../server/dashboard/mod.ts";
import { parseTokenList, type ServerTokens } from "../server/tokens.ts";
import { parseInteger, UsageError } from "./args.ts";
import { linkedRegistry } from "./context.ts";
import { type HttpListener, listenHttp } from "./http_listen.ts";
import type { CliIo } from "./io.ts";
import { type ListenAddress, parseListenAddress, urlOf } from "./listen_address.ts";

/** The largest --max-body: 1 GiB. */
const MAX_BODY_LIMIT = 1024 * 1024 * 1024;

export const SERVE_HELP =
  `  --max-body <bytes>   Largest request body read (default ${DEFAULT_MAX_BODY_BYTES}: 1 MiB); larger ones get 413
Tokens, comma-separated, from the environment (each at least 16 characters):
  PRISMQ_ADMIN_TOKENS  may read and act (enqueue, cancel, retry, delete, purge, pause, limits)
  PRISMQ_READ_TOKENS   may only read
With no token set, every request may act: the address must then be loopback (127.0.0.1, ::1,
localhost), and any other address is refused at start. Clients send 'Authorization: Bearer <token>'.
Routes: GET /api/openapi.json (no token needed); see the README's "Server and HTTP API".`;

export interface ServeSettings {
  address: ListenAddress;
  maxBodyBytes: number;
  tokens: ServerTokens;
}

/**
 * Checks the server's options before anything is opened.
 *
 * @throws {UsageError} for an address or limit that cannot be used, or a non-loopback address without token
 */
export function serveSettings(
  flag: string,
  addressText: string,
  maxBody: string | undefined,
  env: CliIo["env"],
): ServeSettings {
  const address = parseListenAddress(flag, addressText);
  const maxBodyBytes = maxBody === undefined
    ? DEFAULT_MAX_BODY_BYTES
    : parseInteger("--max-body", maxBody, 1, MAX_BODY_LIMIT);
  const tokens = {
    admin: parseTokenList("PRISMQ_ADMIN_TOKENS", env.PRISMQ_ADMIN_TOKENS),
    read: parseTokenList("PRISMQ_READ_TOKENS", env.PRISMQ_READ_TOKENS),
  };
  if (!address.loopback && tokens.admin.length === 0 && tokens.read.length === 0) {
    throw new UsageError(
      `Refusing to listen on ${addressText} without a token: anyone who can reach it could enqueue, ` +
        `cancel and delete tasks.`,
      "Set PRISMQ_ADMIN_TOKENS (and PRISMQ_READ_TOKENS for read-only access), or listen on 127.0.0.1.",
    );
  }
  if (!address.loopback && tokens.admin.length === 0) {
    throw new UsageError(
      `Refusing to listen on ${addressText} with read-only tokens only: nothing could act, and actions ` +
        `would be open to no one.`,
      "Set PRISMQ_ADMIN_TOKENS as well.",
    );
  }
  return { address, maxBodyBytes, tokens };
}

/** Starts the API's server on `db`; returns its URL and listener. */
export async function startHttpServer(
  io: CliIo,
  db: QueueDatabase,
  settings: ServeSettings,
  handlers: readonly HandlerDefinition[],
  schedules: readonly ScheduleDefinition[],
): Promise<{ url: string; listener: HttpListener; describe: string }> {
  const maxPayload = io.env.PRISMQ_MAX_PAYLOAD_BYTES;
  const handler = createHttpHandler(db, {
    registry: linkedRegistry(handlers, schedules),
    adminTokens: settings.tokens.admin,
    readTokens: settings.tokens.read,
    maxBodyBytes: settings.maxBodyBytes,
    dashboard: dashboardResponse,
    maxPayloadBytes: maxPayload === undefined || maxPayload === ""
      ? undefined
      : parseInteger("PRISMQ_MAX_PAYLOAD_BYTES", maxPayload, 1),
    // Never the request or its headers: they may carry a token.
    onError: (error) => io.stderr.write(`prismq server: error answering a request: ${describe(error)}\n`),
  });
  const { hostname, port } = settings.address;
  const listener = await listenHttp(handler, hostname, port);
  const url = urlOf(hostname, listener.port);
  const { admin, read } = settings.tokens;
  const access = admin.length + read.length === 0
    ? "no token (loopback only: every request may act)"
    : `${admin.length} admin and ${read.length} read-only token${
      admin.length + read.length === 1 ? "" : "s"
    }`;
  return {
    url,
    listener,
    describe: `HTTP API on ${url} with ${access}; its routes: ${url}/api/openapi.json`,
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** The settings of `prismq run --serve`, or undefined without it. @throws {UsageError} */
export function workerServeSettings(
  serve: string | undefined,
  maxBody: string | undefined,
  env: CliIo["env"],
): ServeSettings | undefined {
  if (serve !== undefined) return serveSettings("--serve", serve, maxBody, env);
  if (maxBody !== undefined) {
    throw new UsageError("--max-body is an option of --serve; add --serve <host:port>.");
  }
  return undefined;
}

/**
 * Runs `work` (a worker's loop) with the API served beside it when `settings` say so: the server starts
 * first, and stops once `work` has settled, after the requests under way (before the database closes).
 */
export async function servingWhile<T>(
  server: {
    io: CliIo;
    db: QueueDatabase;
    handlers: readonly HandlerDefinition[];
    schedules: readonly ScheduleDefinition[];
    settings: ServeSettings | undefined;
    note: (text: string) => void;
  },
  work: () => Promise<T>,
): Promise<T> {
  const { io, db, handlers, schedules, settings, note } = server;
  if (!settings) return await work();
  const { listener, describe } = await startHttpServer(io, db, settings, handlers, schedules);
  note(`Serving the ${describe}.`);
  try {
    return await work();
  } finally {
    await listener.close();
  }
}
