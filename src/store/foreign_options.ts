/**
 * Options meant for another kind of database: `QueueDatabase` takes the options of every store in one
 * object, and each store refuses those of the others rather than ignore them.
 *
 * @module
 */
import { redactLocation } from "../db_url.ts";
import { invalidType } from "../errors.ts";

/**
 * `options` without those of other kinds of database, which this kind has no use for: each one given
 * (not undefined) is refused, saying what to use instead; absent or undefined ones are dropped.
 *
 * @param foreign each option of another kind, and what this kind has instead
 * @param of which database they belong to, for the message: `SQLite databases`
 * @throws {TypeError} naming the first foreign option given (code `INVALID_ARGUMENT`)
 */
export function withoutForeignOptions(
  options: unknown,
  foreign: Readonly<Record<string, string>>,
  of: string,
  location: string,
): Record<string, unknown> {
  if (typeof options !== "object" || options === null) throw invalidType("The options must be an object.");
  const rest = { ...options } as Record<string, unknown>;
  for (const [name, instead] of Object.entries(foreign)) {
    if (rest[name] !== undefined) {
      throw invalidType(`${name} is an option of ${of}, not of ${redactLocation(location)}: ${instead}.`);
    }
    delete rest[name];
  }
  return rest;
}
