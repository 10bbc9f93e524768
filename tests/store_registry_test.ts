/**
 * The store registry (src/store/registry.ts): which store opens each location, by its URL scheme; the error
 * for a scheme no store opens; and that `QueueDatabase` reaches stores only through it.
 *
 * @module
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseError, QueueDatabase } from "../mod.ts";
import { openStore, storeKindFor, supportedLocations } from "../src/store/registry.ts";
import { POSTGRES } from "../src/store/postgres/open.ts";
import { LazyPostgresStore } from "../src/store/postgres/lazy_store.ts";
import { SQLITE } from "../src/store/sqlite/open.ts";
import { SqliteStore } from "../src/store/sqlite/store.ts";
import { storeOf } from "../src/store/store_of.ts";
import { makeTempDir, REPO } from "./_helpers.ts";

/** Locations of every scheme the SQLite store opens, and what kind of database each is. */
const SQLITE_LOCATIONS: [string, string][] = [
  [":memory:", "a SQLite database in memory"],
  ["file::memory:", "a SQLite database in memory"],
  ["queue.db", "a SQLite file"],
  ["./a:b.db", "a SQLite file"],
  ["/abs/queue.db", "a SQLite file"],
  ["file:queue.db", "a SQLite file"],
  ["FILE:///abs/queue.db", "a SQLite file"],
  ["libsql://db.example.com", "a libSQL server"],
  ["http://127.0.0.1:8080", "a libSQL server"],
  ["https://db.example.com", "a libSQL server"],
  ["ws://127.0.0.1:8080", "a libSQL server"],
  ["WSS://db.example.com", "a libSQL server"],
];

/** `shown` is the location as the message must show it: without a password or query. */
function assertUnknownScheme(error: unknown, shown: string, scheme: string): boolean {
  assert.ok(error instanceof DatabaseError, `expected a DatabaseError, got ${error}`);
  assert.equal(error.code, "DATABASE_URL_INVALID");
  assert.ok(
    error.message.startsWith(`The database URL '${shown}' is invalid: no store opens '${scheme}:' URLs`),
    error.message,
  );
  assert.doesNotMatch(error.message, /s3cret/);
  assert.ok(error.message.endsWith(`Give ${supportedLocations()}.`), error.message);
  return true;
}

describe("the store registry", () => {
  test("':memory:', paths and every file:, libsql:, http(s): and ws(s): URL go to the SQLite store", () => {
    for (const [location] of SQLITE_LOCATIONS) assert.equal(storeKindFor(location), SQLITE, location);
  });

  test("each location opens a SQLite store of the kind it names, reached by its libSQL URL", async () => {
    const { dir, remove } = makeTempDir();
    try {
      for (const [given, kind] of SQLITE_LOCATIONS) {
        // Files in a folder of this test's own; servers are not reached: nothing is, before a first call.
        const location = kind === "a SQLite file" ? `file:${join(dir, given.replace(/^.*[/:]/, ""))}` : given;
        const { store, url } = openStore(location, {});
        try {
          assert.ok(store instanceof SqliteStore, location);
          assert.equal(store.kind, kind, location);
          assert.equal(url, location);
        } finally {
          await store.close();
        }
      }
      const db = new QueueDatabase(join(dir, "q 1.db"));
      assert.equal(storeOf(db).kind, "a SQLite file");
      assert.equal(db.url, `file:${join(dir, "q 1.db")}`);
      await db.close();
    } finally {
      remove();
    }
  });

  test("postgres: and postgresql: URLs open a PostgreSQL store, named without its password", async () => {
    for (const scheme of ["postgres", "postgresql", "POSTGRES"]) {
      const location = `${scheme}://prismq:secret@127.0.0.1:5432/queue?sslmode=disable`;
      assert.equal(storeKindFor(location), POSTGRES, location);
      // Nothing is reached before a first call.
      const { store, url } = openStore(location, { maxConnections: 2 });
      try {
        assert.ok(store instanceof LazyPostgresStore, location);
        assert.equal(store.kind, "a PostgreSQL server");
        assert.equal(url, `${scheme.toLowerCase()}://prismq@127.0.0.1:5432/queue`);
      } finally {
        await store.close();
      }
    }
  });

  test("a PostgreSQL URL refuses the options of SQLite databases, saying what to use instead", () => {
    const location = "postgres://prismq:secret@127.0.0.1:5432/queue";
    for (
      const [name, value, instead] of [
        ["authToken", "t", /PGPASSWORD/],
        ["busyTimeoutMs", 100, /requestTimeoutMs/],
        ["synchronous", "full", /synchronous_commit/],
      ] as const
    ) {
      assert.throws(() => new QueueDatabase(location, { [name]: value }), (error: Error) => {
        assert.ok(error instanceof TypeError, String(error));
        assert.ok(error.message.startsWith(`${name} is an option of SQLite databases`), error.message);
        assert.match(error.message, instead);
        assert.doesNotMatch(error.message, /secret/);
        return true;
      });
    }
  });

  test("a mistyped scheme's error shows no password or token, however the URL is written", () => {
    for (
      const [location, shown, scheme] of [
        ["postgress://app:s3cret@127.0.0.1/queue", "postgress://app@127.0.0.1/queue", "postgress"],
        ["mysql://app:s3cret@127.0.0.1/queue?password=s3cret", "mysql://app@127.0.0.1/queue", "mysql"],
        ["postgresq:app:s3cret@127.0.0.1/queue", "postgresq:…", "postgresq"],
      ]
    ) {
      assert.throws(() => new QueueDatabase(location), (e) => assertUnknownScheme(e, shown, scheme));
    }
  });

  test("a SQLite location refuses the options of PostgreSQL servers, saying what it has instead", () => {
    const options = [["maxConnections", 4], ["connectTimeoutMs", 1000], ["reconnectTimeoutMs", 0]] as const;
    for (const [name, value] of options) {
      assert.throws(() => new QueueDatabase(":memory:", { [name]: value }), (error: Error) => {
        assert.ok(error instanceof TypeError, String(error));
        assert.equal(
          error.message.startsWith(`${name} is an option of PostgreSQL servers, not of :memory:`),
          true,
        );
        return true;
      });
    }
  });

  test("the supported locations are listed with their store", () => {
    assert.equal(
      supportedLocations(),
      "':memory:', a file path, or a URL of file:, libsql:, http:, https:, ws:, wss: (SQLite); postgres:, " +
        "postgresql: (PostgreSQL)",
    );
  });

  test("a scheme no store opens is a DatabaseError (DATABASE_URL_INVALID) listing the schemes that are", () => {
    assert.throws(
      () => storeKindFor("redis://127.0.0.1:6379"),
      (e) => assertUnknownScheme(e, "redis://127.0.0.1:6379", "redis"),
    );
    assert.throws(
      () => new QueueDatabase("MONGODB://127.0.0.1/q"),
      (e) => assertUnknownScheme(e, "mongodb://127.0.0.1/q", "mongodb"),
    );
    // A file whose name looks like a scheme is told how to write it.
    assert.throws(() => new QueueDatabase("queue:1.db"), (error: unknown) => {
      assertUnknownScheme(error, "queue:1.db", "queue");
      assert.match((error as Error).message, /a file whose name has a colon is written \.\/queue:1\.db/);
      return true;
    });
  });

  test("QueueDatabase reaches stores only through the registry: it imports no store's code", () => {
    const source = readFileSync(join(REPO, "src/database.ts"), "utf8");
    const imports = [...source.matchAll(/^(import|export)(?! type)[^;]*? from "([^"]+)";/gms)].map((m) =>
      m[2]
    );
    assert.ok(imports.includes("./store/registry.ts"), imports.join(", "));
    assert.deepEqual(imports.filter((from) => from!.startsWith("./store/sqlite/")), []);
  });
});
