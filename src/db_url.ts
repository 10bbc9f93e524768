/**
 * Database locations, read by one set of rules: what a caller gives (`:memory:`, a file path, or a URL)
 * becomes a database in memory, a local file with its path, or a server, and the URL that opens it. Which
 * store opens it goes by its scheme ({@link schemeOf}; see `store/registry.ts`).
 *
 * @module
 */
import { DatabaseError, invalidType } from "./errors.ts";

/** Where a database lives, and the URL that opens it (for SQLite, the libSQL URL). */
export type DatabaseLocation =
  /** A database in memory: `:memory:`, `file::memory:` or an empty `file:` URL. */
  | { kind: "memory"; url: string }
  /** A local file; `path` is as given (relative paths are relative to the working folder). */
  | { kind: "file"; url: string; path: string }
  /**
   * A database server, by a URL with a host and any scheme but `file:`: a libSQL server's (`libsql:`,
   * `http(s):`, `ws(s):`) or another database's.
   */
  | { kind: "server"; url: string };

/**
 * The URL scheme `location` starts with, in lower case and without its colon (`libsql` for
 * `libsql://db.example.com`), or undefined for `:memory:` and a file path. A single letter before a colon is
 * a Windows drive (`C:\queue.db`), not a scheme; a file whose name has a colon is written `./a:b.db`.
 *
 * @example
 * ```ts
 * import { schemeOf } from "./db_url.ts";
 * if (schemeOf("HTTP://127.0.0.1:8080") !== "http" || schemeOf("data/queue.db") !== undefined) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function schemeOf(location: string): string | undefined {
  if (typeof location !== "string") return undefined;
  return /^([a-z][a-z0-9+.-]+):/i.exec(location)?.[1]?.toLowerCase();
}

/**
 * `location` as it may be shown in a message or a log: a path or `:memory:` as given; a URL without its
 * password, query (where a libSQL URL may carry `authToken`) and fragment; and a URL that cannot be read so
 * (malformed, or a user without `//`) as its scheme alone, `scheme:…`, since anything after it may be a
 * secret. A name with a colon but neither `//` nor `@` (a file's, `queue:1.db`) is shown as given.
 *
 * @example
 * ```ts
 * import { redactLocation } from "./db_url.ts";
 * if (redactLocation("postgres://app:s3cret@127.0.0.1/queue?sslmode=require") !== "postgres://app@127.0.0.1/queue") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function redactLocation(location: string): string {
  const scheme = schemeOf(location);
  // Not a URL PrismQ can read, but it may be one mistyped (`postgres//user:pw@host`): no `:…@` shown.
  if (scheme === undefined) return location.replace(/:[^:@/]*@/g, ":…@");
  if (scheme === "file") return location.replace(/[?#].*$/s, "");
  // No `//` and no `@`: no user or password, most likely a file whose name has a colon (`queue:1.db`).
  if (!location.includes("//") && !location.includes("@")) return location;
  if (location.slice(scheme.length + 1, scheme.length + 3) === "//") {
    try {
      const url = new URL(location);
      url.password = "";
      url.search = "";
      url.hash = "";
      return url.toString().replace(/\/$/, location.endsWith("/") ? "/" : "");
    } catch {
      // Unreadable: the scheme alone, below.
    }
  }
  return `${scheme}:…`;
}

/**
 * Reads a database location. A path is taken literally: the characters that mean something in a URL (`%`,
 * `?`, `#`) are escaped in its URL. A `file:` URL may be `file:relative`, `file:/absolute`,
 * `file:///absolute` or `file://localhost/absolute`, with percent-escapes, and no query. A URL of any other
 * scheme is a server's, and must name a host.
 *
 * @param location `:memory:`, a file path, or a `file:` or server URL (`libsql:`, `http(s):`, `ws(s):`)
 * @returns what it names
 * @throws {TypeError} for a location that is not a string, or is blank (code `INVALID_ARGUMENT`)
 * @throws {DatabaseError} with code `DATABASE_URL_INVALID`, for a server URL without a host, and a `file:`
 *   URL that names another host, has a query, or a malformed escape
 *
 * @example
 * ```ts
 * import { parseDatabaseLocation } from "./db_url.ts";
 * const location = parseDatabaseLocation("data/queue 1.db");
 * if (location.kind !== "file" || location.url !== "file:data/queue 1.db") throw new Error("unexpected");
 * ```
 */
export function parseDatabaseLocation(location: string): DatabaseLocation {
  if (typeof location !== "string") {
    throw invalidType(
      `The database location must be a string, got ${location === null ? "null" : typeof location}.`,
    );
  }
  if (location === ":memory:") return { kind: "memory", url: location };
  const scheme = schemeOf(location);
  if (scheme !== undefined && scheme !== "file") {
    if (!hasHost(location)) {
      throw invalidUrl(
        location,
        "it is not a URL with a host, like libsql://db.example.com or http://127.0.0.1:8080.",
      );
    }
    return { kind: "server", url: location };
  }
  if (scheme === "file") {
    const path = fileUrlPath(location);
    return path === ":memory:" || path === ""
      ? { kind: "memory", url: location }
      : { kind: "file", url: location, path };
  }
  if (location.trim() === "") {
    throw invalidType("The database location is empty. Give a file path, ':memory:', or a libsql:// URL.");
  }
  return {
    kind: "file",
    url: "file:" + location.replace(/[%?#]/g, (c) => encodeURIComponent(c)),
    path: location,
  };
}

/** Whether `url` parses as a URL with a host (`scheme://host`): the libSQL client cannot reach a server without one. */
function hasHost(url: string): boolean {
  try {
    return /^[a-z][a-z0-9+.-]+:\/\//i.test(url) && new URL(url).host !== "";
  } catch {
    return false;
  }
}

function invalidUrl(url: string, why: string): DatabaseError {
  return new DatabaseError(`The database URL '${redactLocation(url)}' is invalid: ${why}`, {
    code: "DATABASE_URL_INVALID",
  });
}

/** The path inside a `file:` URL, percent-escapes decoded. */
function fileUrlPath(url: string): string {
  const invalid = (why: string) => invalidUrl(url, why);
  let rest = url.slice("file:".length);
  if (rest.startsWith("//")) {
    const slash = rest.indexOf("/", 2);
    const host = rest.slice(2, slash === -1 ? undefined : slash);
    if (host !== "" && host.toLowerCase() !== "localhost") {
      throw invalid(`it names the host '${host}'. Write an absolute path as file:/path or file:///path.`);
    }
    rest = slash === -1 ? "" : rest.slice(slash);
  }
  if (rest.includes("?")) {
    throw invalid("it has query parameters, which PrismQ does not use. Remove them.");
  }
  try {
    return decodeURIComponent(rest);
  } catch {
    throw invalid("it has a malformed percent-escape. Write % in a file name as %25.");
  }
}
