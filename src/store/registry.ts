/**
 * The store registry: which kind of store opens a database location, by the location's URL scheme. A
 * location without one (`:memory:`, a file path) counts as `file:`. `QueueDatabase` asks it and knows no
 * store itself; a new database is a folder beside `sqlite/` exporting its {@link StoreKind}, and one line in
 * {@link KINDS}.
 *
 * @module
 */
import { redactLocation, schemeOf } from "../db_url.ts";
import { DatabaseError } from "../errors.ts";
import { POSTGRES } from "./postgres/open.ts";
import { SQLITE } from "./sqlite/open.ts";
import type { Store } from "./store.ts";

/** A kind of store: the URL schemes that reach its database, and how to open a store on one. */
export interface StoreKind {
  /** The database's name, for messages: `SQLite`. */
  readonly name: string;
  /** Its locations' URL schemes, in lower case, without the colon; `file` takes paths and `:memory:` too. */
  readonly schemes: readonly string[];
  /** The schema version of its newest migration: where `migrate()` leaves a database of this kind. */
  readonly schemaVersion: number;
  /**
   * Opens a store on `location` (one of its schemes) with the options given to `QueueDatabase`, which it
   * checks; nothing is reached yet, the first call does that.
   *
   * @returns the store, and the URL its database is reached by
   * @throws {TypeError | RangeError} for an option it refuses
   * @throws {DatabaseError} for a location it cannot read
   */
  open(location: string, options: unknown): { store: Store; url: string };
}

/** Every kind of store, in the order messages list them. */
const KINDS: readonly StoreKind[] = [
  SQLITE,
  POSTGRES,
];

const BY_SCHEME = new Map<string, StoreKind>();
for (const kind of KINDS) {
  for (const scheme of kind.schemes) {
    if (BY_SCHEME.has(scheme)) throw new Error(`Two kinds of store claim the scheme '${scheme}:'.`);
    BY_SCHEME.set(scheme, kind);
  }
}

/** What locations PrismQ opens, in words: `':memory:', a file path, or file:, libsql:, … (SQLite)`. */
export function supportedLocations(): string {
  const kinds = KINDS.map((kind) =>
    `${kind.schemes.map((scheme) => `${scheme}:`).join(", ")} (${kind.name})`
  );
  return `':memory:', a file path, or a URL of ${kinds.join("; ")}`;
}

/**
 * The kind of store that opens `location`.
 *
 * @throws {DatabaseError} with code `DATABASE_URL_INVALID` for a URL scheme no store opens, saying which do
 */
export function storeKindFor(location: string): StoreKind {
  const scheme = schemeOf(location) ?? "file";
  const kind = BY_SCHEME.get(scheme);
  if (kind !== undefined) return kind;
  const shown = redactLocation(location);
  const path = location.includes("//") ? "" : ` (a file whose name has a colon is written ./${shown})`;
  throw new DatabaseError(
    `The database URL '${shown}' is invalid: no store opens '${scheme}:' URLs${path}. Give ` +
      `${supportedLocations()}.`,
    { code: "DATABASE_URL_INVALID" },
  );
}

/**
 * The schema version `location`'s kind of store migrates a database to; see {@link StoreKind.schemaVersion}.
 *
 * @throws {DatabaseError} with code `DATABASE_URL_INVALID` for a URL scheme no store opens
 */
export function schemaVersionFor(location: string): number {
  return storeKindFor(location).schemaVersion;
}

/**
 * Opens a store on `location` with the store's own `options`; see {@link StoreKind.open}.
 *
 * @throws {DatabaseError} with code `DATABASE_URL_INVALID` for a URL scheme no store opens
 */
export function openStore(location: string, options: unknown): { store: Store; url: string } {
  return storeKindFor(location).open(location, options);
}
