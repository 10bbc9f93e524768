/**
 * `http_request`: makes one HTTP request, for webhooks. A status that is not accepted, a timeout or a
 * network error fails the attempt, and the task is retried with backoff.
 *
 * @module
 */
import * as v from "valibot";
import { payloadObject } from "./_payload.ts";
import { defineHandler } from "../mod.ts";

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] as const;
/** RFC 9110 `token`: what a header name may be made of. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Characters fetch() refuses in a header value; CR and LF would also split the header in two. */
const FORBIDDEN_IN_HEADER_VALUE = /[\r\n\0]/;
const ERROR_BODY_CHARS = 200;

const schema = v.pipe(
  payloadObject({
    url: v.pipe(
      v.string("must be a URL"),
      v.check(isHttpUrl, "must be an absolute http:// or https:// URL like https://example.com/hook"),
    ),
    method: v.optional(v.picklist(METHODS, `must be one of ${METHODS.join(", ")}`), "POST"),
    headers: v.optional(
      v.record(
        v.pipe(v.string(), v.regex(HEADER_NAME, "is not a valid header name")),
        v.pipe(
          v.string("must be a string"),
          v.check((value) => !FORBIDDEN_IN_HEADER_VALUE.test(value), "must not contain CR, LF or NUL"),
        ),
        "must be an object of header names to string values",
      ),
    ),
    // A string is sent as is; any other JSON value is sent as JSON.
    body: v.optional(v.unknown()),
    timeoutMs: v.optional(
      v.pipe(
        v.number("must be a number of milliseconds"),
        v.integer("must be a whole number of milliseconds"),
        v.minValue(1, "must be at least 1"),
        v.maxValue(300_000, "must be at most 300000 (five minutes)"),
      ),
      10_000,
    ),
    acceptStatus: v.optional(
      v.pipe(
        v.array(
          v.pipe(
            v.number("must be an HTTP status code"),
            v.integer("must be a whole number"),
            v.minValue(100, "must be an HTTP status code from 100 to 599"),
            v.maxValue(599, "must be an HTTP status code from 100 to 599"),
          ),
          "must be a list of HTTP status codes",
        ),
        v.minLength(1, "must list at least one status; leave it out to accept any 2xx"),
      ),
    ),
  }),
  // fetch() throws on such a request, and would do so again on every retry.
  v.forward(
    v.partialCheck(
      [["method"], ["body"]],
      ({ method, body }) => body === undefined || (method !== "GET" && method !== "HEAD"),
      "must be left out for GET and HEAD requests",
    ),
    ["body"],
  ),
);

export default defineHandler({
  type: "http_request",
  schema,
  description:
    "Makes an HTTP request (a webhook call); retried on a timeout, a network error or a bad status.",
  version: "1.0.0",
  async handle(task, ctx) {
    const { url, method, timeoutMs, acceptStatus } = task.payload;
    // Webhook URLs often carry secrets in their path or query: messages name the origin only.
    const target = `${method} ${new URL(url).origin}`;
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]);
    let status: number;
    let refusedBody: string | undefined;
    try {
      const response = await fetch(url, {
        method,
        headers: requestHeaders(task.payload),
        body: requestBody(task.payload),
        signal,
      });
      status = response.status;
      if (acceptStatus ? acceptStatus.includes(status) : response.ok) {
        // Free the connection without downloading a body nobody reads.
        await response.body?.cancel();
      } else {
        refusedBody = await readStart(response, ERROR_BODY_CHARS);
      }
    } catch (error) {
      // Cancelled or shut down: the worker already knows why, and the reason must reach it unchanged.
      if (ctx.signal.aborted) throw error;
      if (signal.aborted) throw new Error(`${target} timed out after ${timeoutMs} ms.`);
      throw new Error(`${target} failed: ${describeFetchError(error)}`);
    }
    if (refusedBody !== undefined) {
      throw new Error(`${target} answered ${status}, which is not accepted: ${refusedBody}`);
    }
    await ctx.log("info", `${target} answered ${status}.`, { status });
  },
});

type HttpRequest = v.InferOutput<typeof schema>;

function requestHeaders({ headers, body }: HttpRequest): Headers {
  const result = new Headers(headers);
  if (body !== undefined && typeof body !== "string" && !result.has("content-type")) {
    result.set("content-type", "application/json");
  }
  return result;
}

function requestBody({ body }: HttpRequest): string | undefined {
  return body === undefined || typeof body === "string" ? body : JSON.stringify(body);
}

/** The first `chars` characters of a response's body, without reading the rest of it. */
async function readStart(response: Response, chars: number): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (text.length < chars) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    await reader.cancel();
  }
  return text.slice(0, chars);
}

/** Node's fetch says only "fetch failed" and keeps the reason (ECONNREFUSED…) in `cause`. */
function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? error.cause.message : undefined;
  return cause && !error.message.includes(cause) ? `${error.message} (${cause})` : error.message;
}

function isHttpUrl(text: string): boolean {
  try {
    return /^https?:$/.test(new URL(text).protocol);
  } catch {
    return false;
  }
}
