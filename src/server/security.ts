/**
 * The checks every API request passes before its route runs: who it is (a bearer token, when tokens are
 * configured), whether it may act (admin), whether an action comes from another site, and whether its
 * body is JSON and small enough to read.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { ApiError } from "./errors.ts";
import { hasTokens, type Role, type ServerTokens, TokenChecker } from "./tokens.ts";

/** What the routes know of the request's sender. */
export type SecurityEnv = { Variables: { role: Role } };

/** Methods that only read: every other method is an action. */
const READS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * The middleware that checks each `/api/` request (but the OpenAPI document, public by design) in this
 * order: without tokens, that it names a loopback host (403); its token (401), an action's origin (403),
 * its role (403), an action's body type and declared size (415, 413).
 */
export function securityChecks(tokens: ServerTokens, maxBodyBytes: number): MiddlewareHandler<SecurityEnv> {
  const checker = hasTokens(tokens) ? new TokenChecker(tokens) : undefined;
  return async (c, next) => {
    const request = c.req.raw;
    if (!checker) assertLoopbackHost(request);
    const role = checker ? await roleOf(checker, request.headers.get("authorization")) : "admin";
    if (!READS.has(request.method)) {
      assertSameSite(request);
      if (role !== "admin") {
        throw new ApiError(
          403,
          "READ_ONLY_TOKEN",
          "This token may only read; actions need a token from PRISMQ_ADMIN_TOKENS.",
        );
      }
      assertBodyHeaders(request, maxBodyBytes);
    }
    c.set("role", role);
    await next();
  };
}

async function roleOf(checker: TokenChecker, header: string | null): Promise<Role> {
  if (header === null) {
    throw new ApiError(
      401,
      "UNAUTHORIZED",
      "This server needs a token: send 'Authorization: Bearer <token>'.",
    );
  }
  const match = /^Bearer +(\S+) *$/i.exec(header);
  if (!match) {
    throw new ApiError(401, "UNAUTHORIZED", "The Authorization header must be 'Bearer <token>'.");
  }
  const role = await checker.roleOf(match[1]!);
  // The token is never repeated in the answer: it may be someone's real token mistyped.
  if (role === undefined) {
    throw new ApiError(401, "UNAUTHORIZED", "The token given is not one of this server's.");
  }
  return role;
}

/**
 * Without tokens every request may act, which is safe only when nothing but this machine can send one. A
 * page of another site can, through DNS rebinding: its name made to point at 127.0.0.1, its requests name
 * its own host (and Origin), so they pass as same-site. A request to a loopback listener that names any host
 * but a loopback one is refused.
 */
function assertLoopbackHost(request: Request): void {
  const host = new URL(request.url).hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) return;
  throw new ApiError(
    403,
    "HOST_NOT_LOOPBACK",
    `This server has no tokens, so it answers only requests to a loopback host (127.0.0.1, [::1], ` +
      `localhost), not '${host}'. Set PRISMQ_ADMIN_TOKENS to serve other names.`,
  );
}

/**
 * Refuses an action sent by a page of another site: a browser says so in `Sec-Fetch-Site`, and in `Origin`,
 * whose host and port must then be this server's own. Tools (curl, other services) send neither and pass.
 * The scheme is not compared: behind a proxy that ends TLS, the page is https and the request it forwards
 * http.
 */
function assertSameSite(request: Request): void {
  const site = request.headers.get("sec-fetch-site");
  const origin = request.headers.get("origin");
  if (
    site === "cross-site" || site === "same-site" ||
    (origin !== null && hostOf(origin) !== new URL(request.url).host)
  ) {
    throw new ApiError(
      403,
      "CROSS_SITE",
      "Actions are refused from pages of other sites; send them from the dashboard on this server, or " +
        "without an Origin header (curl, another service).",
    );
  }
}

/** The host and port of an Origin header, or undefined for one that is no URL (`null`, say). */
function hostOf(origin: string): string | undefined {
  try {
    const url = new URL(origin);
    return url.protocol === "http:" || url.protocol === "https:" ? url.host : undefined;
  } catch {
    return undefined;
  }
}

/** An action with a body must declare it JSON, and not declare more bytes than the limit. */
function assertBodyHeaders(request: Request, maxBodyBytes: number): void {
  const length = request.headers.get("content-length");
  const hasBody = (length !== null && length !== "0") || request.headers.has("transfer-encoding");
  if (!hasBody) return;
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new ApiError(
      415,
      "UNSUPPORTED_MEDIA_TYPE",
      "Send the body as JSON, with 'Content-Type: application/json'.",
    );
  }
  if (length !== null && Number(length) > maxBodyBytes) throw tooLarge(maxBodyBytes);
}

/** The refusal of a body over the limit. */
export function tooLarge(maxBodyBytes: number): ApiError {
  return new ApiError(
    413,
    "BODY_TOO_LARGE",
    `The request body is over this server's limit of ${maxBodyBytes} bytes (prismq serve --max-body).`,
  );
}
