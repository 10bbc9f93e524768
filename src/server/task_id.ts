/**
 * A task id from a path: digits only, as the API writes them.
 *
 * @module
 */
import { ApiError } from "./errors.ts";

/** The id in `text`. @throws {ApiError} 400 for anything but a whole number from 1 */
export function taskIdParam(text: string | undefined): number {
  const id = text !== undefined && /^[1-9][0-9]{0,15}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(id)) {
    throw new ApiError(
      400,
      "INVALID_ARGUMENT",
      `'${String(text).slice(0, 40)}' is not a task id: ids are whole numbers from 1.`,
    );
  }
  return id;
}
