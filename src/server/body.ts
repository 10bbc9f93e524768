/**
 * Reading an action's JSON body: never more than the limit (a body that claims less than it sends is cut off
 * at the limit, not read whole), strict UTF-8, and integers JavaScript would round refused as the command
 * line refuses them.
 *
 * @module
 */
import { inexactIntegerProblem } from "../exact_numbers.ts";
import { ApiError } from "./errors.ts";
import { tooLarge } from "./security.ts";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The body's JSON value; `undefined` when the request has no body. @throws {ApiError} 400, 413 */
export async function readJson(request: Request, maxBodyBytes: number): Promise<unknown> {
  const bytes = await readLimited(request, maxBodyBytes);
  if (bytes.length === 0) return undefined;
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw new ApiError(400, "INVALID_JSON", "The request body is not valid UTF-8.");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ApiError(
      400,
      "INVALID_JSON",
      `The request body is not valid JSON: ${(error as Error).message}.`,
    );
  }
  const inexact = inexactIntegerProblem(text);
  if (inexact) {
    throw new ApiError(400, "INVALID_JSON", `The request body cannot be taken exactly: ${inexact}.`);
  }
  return value;
}

/** A JSON object body, required. @throws {ApiError} 400 when there is none, or it is not an object */
export async function readJsonObject(
  request: Request,
  maxBodyBytes: number,
): Promise<Record<string, unknown>> {
  const value = await readJson(request, maxBodyBytes);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ApiError(400, "INVALID_ARGUMENT", "The request body must be a JSON object.");
  }
  return value as Record<string, unknown>;
}

async function readLimited(request: Request, maxBodyBytes: number): Promise<Uint8Array> {
  if (request.body === null) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > maxBodyBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge(maxBodyBytes);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/** Refuses fields of an action's body that it does not take, naming them. */
export function onlyFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(body).filter((key) => !allowed.includes(key));
  if (unknown.length > 0) {
    throw new ApiError(
      400,
      "INVALID_ARGUMENT",
      `Unknown field '${unknown[0]}' in the request body. It takes: ${allowed.join(", ") || "nothing"}.`,
    );
  }
}
