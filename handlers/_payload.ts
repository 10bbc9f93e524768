/**
 * What the handlers share about payloads.
 *
 * @module
 */
import type * as v from "valibot";

/**
 * The message of a strict object's key issue. Valibot words a missing and an unknown field alike
 * ("Invalid key: …"); this says plainly which it is. Pass it as `v.strictObject(entries, fieldMessage)`.
 */
export function fieldMessage(issue: v.StrictObjectIssue): string {
  if (!issue.path) return "the payload must be a JSON object";
  return issue.expected === "never" ? "is not a field of this payload" : "is required";
}
