/**
 * The one reader of database locations (`parseDatabaseLocation`, which the SQLite store uses too): what each
 * form names, the `file:` URLs it refuses, and the scheme the store registry goes by (`schemeOf`).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { DatabaseError, isInvalidArgument } from "../mod.ts";
import { parseDatabaseLocation, redactLocation, schemeOf } from "../src/db_url.ts";

const FILES = [
  "plain.db",
  "./x.db",
  "/abs/x.db",
  "dir/a%b?c#d e.db",
  "/abs/100%25?#.db",
  "./x?mode=ro.db",
  "file:rel/x.db",
  "file:/abs/x.db",
  "file:///abs/x.db",
  "file://localhost/abs/x.db",
  "file://LOCALHOST/abs/x.db",
  "FILE:///abs/x.db",
  "file:a%25b%3Fc%23d.db",
  "file:///abs/with%20space.db",
];
/** `file:` URLs and the paths they name. Percent-escapes are decoded, so that %, ? and # can be in a name. */
const FILE_URL_PATHS: [string, string][] = [
  ["file:rel/x.db", "rel/x.db"],
  ["file:x.db", "x.db"],
  ["file:/abs/x.db", "/abs/x.db"],
  ["file:///abs/x.db", "/abs/x.db"],
  ["file://localhost/abs/x.db", "/abs/x.db"],
  ["file://LOCALHOST/abs/x.db", "/abs/x.db"],
  ["file:a%25b%3Fc%23d.db", "a%b?c#d.db"],
  ["file:///abs/with%20space.db", "/abs/with space.db"],
];
const MEMORY = [":memory:", "file::memory:", "file:"];
const SERVERS = [
  "libsql://db.example.com",
  "http://127.0.0.1:8080",
  "HTTPS://x.example.com",
  "ws://h",
  "wss://h",
];
const BAD_FILE_URLS: [string, RegExp][] = [
  ["file://example.com/x.db", /names the host 'example\.com'/],
  ["file://db-server/abs/x.db", /names the host 'db-server'/],
  ["file:x.db?mode=ro", /query parameters/],
  ["file:///abs/x.db?cache=shared", /query parameters/],
  ["file:%zz.db", /malformed percent-escape/],
];
/** Server URLs the libSQL client cannot use; it fails on them with a bare TypeError ('Invalid URL'). */
const BAD_SERVER_URLS = ["libsql://", "http://", "libsql://bad host", "libsql://h:99999", "ws:x"];

describe("parseDatabaseLocation", () => {
  test("a path or file: URL is a file, with the path it names and the URL that opens it", () => {
    assert.deepEqual(parseDatabaseLocation("data/q 1.db"), {
      kind: "file",
      url: "file:data/q 1.db",
      path: "data/q 1.db",
    });
    assert.deepEqual(parseDatabaseLocation("a%b?c#d.db"), {
      kind: "file",
      url: "file:a%25b%3Fc%23d.db",
      path: "a%b?c#d.db",
    });
    assert.deepEqual(parseDatabaseLocation("file://localhost/abs/x.db"), {
      kind: "file",
      url: "file://localhost/abs/x.db",
      path: "/abs/x.db",
    });
  });

  test("memory and servers are told apart from files", () => {
    for (const location of MEMORY) assert.equal(parseDatabaseLocation(location).kind, "memory", location);
    for (const location of SERVERS) {
      assert.deepEqual(parseDatabaseLocation(location), { kind: "server", url: location });
    }
  });

  test("a blank location or one that is not a string is a TypeError marked INVALID_ARGUMENT", () => {
    for (const location of ["", "  ", 42, null]) {
      assert.throws(() => parseDatabaseLocation(location as string), (error: unknown) => {
        assert.ok(error instanceof TypeError);
        return isInvalidArgument(error);
      });
    }
  });

  test("a URL it cannot read is a DatabaseError naming it (as redactLocation shows it), with code DATABASE_URL_INVALID", () => {
    const bad: [string, RegExp][] = [
      ...BAD_FILE_URLS,
      ...BAD_SERVER_URLS.map((url): [string, RegExp] => [url, /with a host/]),
    ];
    for (const [url, why] of bad) {
      assert.throws(() => parseDatabaseLocation(url), (error: unknown) => {
        assert.ok(error instanceof DatabaseError, `${url}: ${error}`);
        assert.ok(
          error.message.startsWith(`The database URL '${redactLocation(url)}' is invalid: `),
          error.message,
        );
        assert.match(error.message, why);
        assert.equal(error.code, "DATABASE_URL_INVALID");
        return true;
      });
    }
  });

  test("reads relative, absolute and localhost file URLs as the path they name", () => {
    const pathOf = (url: string) => {
      const parsed = parseDatabaseLocation(url);
      assert.equal(parsed.kind, "file", url);
      return parsed.kind === "file" ? parsed.path : undefined;
    };
    for (const [url, path] of FILE_URL_PATHS) assert.equal(pathOf(url), path, url);
  });

  test("the URL of a path reads back as exactly that path", () => {
    for (const location of FILES.filter((file) => !file.toLowerCase().startsWith("file:"))) {
      const parsed = parseDatabaseLocation(location);
      const again = parseDatabaseLocation(parsed.url);
      assert.ok(again.kind === "file" && again.path === location, location);
    }
  });

  test("a URL of any other scheme with a host is a server; without one it is refused", () => {
    for (const url of ["postgres://127.0.0.1/queue", "postgresql://u@db.example.com:5432/q", "x-y+z.1://h"]) {
      assert.deepEqual(parseDatabaseLocation(url), { kind: "server", url });
    }
    assert.throws(() => parseDatabaseLocation("postgres:queue"), /is not a URL with a host/);
  });
});

describe("schemeOf", () => {
  test("is the scheme in lower case, or undefined for :memory: and paths (a drive letter is not one)", () => {
    const schemes = {
      "libsql://db.example.com": "libsql",
      "HTTPS://x.example.com": "https",
      "FILE:///abs/x.db": "file",
      "file:": "file",
      "postgresql://h/db": "postgresql",
      "redis+tls://h": "redis+tls",
    };
    for (const [location, scheme] of Object.entries(schemes)) {
      assert.equal(schemeOf(location), scheme, location);
    }
    for (const location of [":memory:", "x.db", "./a:b.db", "/abs/x.db", "C:\\queue.db", "c:/queue.db", ""]) {
      assert.equal(schemeOf(location), undefined, location);
    }
    assert.equal(schemeOf(42 as unknown as string), undefined);
  });
});

describe("redactLocation: a location as messages and db.url show it", () => {
  test("paths as given; URLs without password, query or fragment; unreadable URLs as their scheme alone", () => {
    const cases: [string, string][] = [
      [":memory:", ":memory:"],
      ["data/queue 1.db", "data/queue 1.db"],
      ["C:\\queues\\a.db", "C:\\queues\\a.db"],
      ["file:queue.db", "file:queue.db"],
      ["file:queue.db?authToken=s3cret", "file:queue.db"],
      ["postgres://app:s3cret@127.0.0.1:5432/queue?sslmode=require", "postgres://app@127.0.0.1:5432/queue"],
      ["postgresql://app@127.0.0.1/queue", "postgresql://app@127.0.0.1/queue"],
      ["http://127.0.0.1:8080", "http://127.0.0.1:8080"],
      ["http://127.0.0.1:8080/", "http://127.0.0.1:8080/"],
      ["libsql://db.example.com?authToken=s3cret#x", "libsql://db.example.com"],
      ["postgres:app:s3cret@127.0.0.1/queue", "postgres:…"],
      ["postgres://[s3cret", "postgres:…"],
      ["queue:1.db", "queue:1.db"],
      ["postgres//app:s3cret@127.0.0.1/queue", "postgres//app:…@127.0.0.1/queue"],
    ];
    for (const [location, shown] of cases) assert.equal(redactLocation(location), shown, location);
  });
});
