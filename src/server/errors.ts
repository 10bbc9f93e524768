/**
 * How the API answers a refusal: `{ "error": { "code", "message" } }` with a status that says whose fault
 * it is. Library errors keep their stable codes; the server adds its own for what only HTTP can get wrong.
 *
 * @module
 */
import { INVALID_ARGUMENT, isInvalidArgument, PrismqError } from "../errors.ts";

/** The statuses the API answers a refusal with. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 500 | 503;

/** A refusal the server words itself: a status, a stable code and a message saying how to fix it. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(readonly status: ErrorStatus, readonly code: string, message: string) {
    super(message);
  }
}

/** The status of each library error code the API can meet. */
const STATUS_OF_CODE: Record<string, ErrorStatus> = {
  [INVALID_ARGUMENT]: 400,
  PAYLOAD_INVALID: 400,
  HANDLER_NOT_REGISTERED: 400,
  PAYLOAD_TOO_LARGE: 413,
  TASK_NOT_FOUND: 404,
  TASK_STATE_CONFLICT: 409,
  DEPENDENCY: 409,
  UNIQUE_KEY_HELD: 409,
  DATABASE_ERROR: 503,
};

/** The JSON body of an error answer. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/**
 * The answer for `error`: its status and body. An error that is neither PrismQ's nor the server's is a bug,
 * answered 500 without its message (which may hold anything), and handed to `report`.
 */
export function errorAnswer(
  error: unknown,
  report: (error: unknown) => void,
): { status: ErrorStatus; body: ErrorBody } {
  if (error instanceof ApiError) return answer(error.status, error.code, error.message);
  const code = error instanceof PrismqError
    ? error.code
    : isInvalidArgument(error)
    ? INVALID_ARGUMENT
    : undefined;
  const status = code === undefined ? undefined : STATUS_OF_CODE[code];
  if (code !== undefined && status !== undefined) return answer(status, code, (error as Error).message);
  report(error);
  return answer(500, "INTERNAL", "The server failed to answer; its log says why.");
}

function answer(status: ErrorStatus, code: string, message: string) {
  return { status, body: { error: { code, message } } };
}

/** A JSON response for `error`; see {@link errorAnswer}. */
export function errorResponse(error: unknown, report: (error: unknown) => void): Response {
  const { status, body } = errorAnswer(error, report);
  const headers: Record<string, string> = { "content-type": "application/json; charset=utf-8" };
  if (status === 401) headers["www-authenticate"] = 'Bearer realm="prismq"';
  return new Response(JSON.stringify(body), { status, headers });
}
