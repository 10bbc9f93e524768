/**
 * What the handlers share about payloads.
 *
 * @module
 */
import * as v from "valibot";

/**
 * The message of a strict object's key issue. Valibot words a missing and an unknown field alike
 * ("Invalid key: …"); this says plainly which it is.
 */
function fieldMessage(issue: v.StrictObjectIssue): string {
  if (!issue.path) return "the payload must be a JSON object";
  return issue.expected === "never" ? "is not a field of this payload" : "is required";
}

function isPlainObject(input: unknown): input is Record<string, unknown> {
  return typeof input === "object" && input !== null && !Array.isArray(input);
}

/**
 * A payload schema: a JSON object with exactly these fields. An unknown field (a misspelt `mehtod`) is an
 * error rather than silently ignored, and an array is refused as not an object (valibot would otherwise
 * take it for one and complain about a field named `0`).
 */
export function payloadObject<Entries extends v.ObjectEntries>(entries: Entries) {
  return v.pipe(
    v.custom<Record<string, unknown>>(isPlainObject, "the payload must be a JSON object"),
    v.strictObject(entries, fieldMessage),
  );
}
