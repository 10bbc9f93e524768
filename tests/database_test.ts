/**
 * `QueueDatabase` (src/database.ts): nothing public exposes its store; closing it, asynchronously and once;
 * a backup of a database its store cannot copy.
 *
 * @module
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import * as prismq from "../mod.ts";
import { BackupRefusedError, Queue, QueueDatabase } from "../mod.ts";
import * as testing from "../testing.ts";
import { openDatabaseFiles } from "../src/store/sqlite/connection.ts";
import { storeOf } from "../src/store/store_of.ts";
import { startLibsqlServer } from "./fixtures/libsql_http_server.ts";
import { makeTempDir, rejectionOf, REPO } from "./_helpers.ts";

describe("QueueDatabase's store", () => {
  test("is no property of the database, and neither mod.ts nor testing.ts exports a way to it", async () => {
    const db = new QueueDatabase(":memory:");
    try {
      const store = storeOf(db);
      assert.equal("store" in db, false);
      const own = [...Object.getOwnPropertyNames(db), ...Object.getOwnPropertySymbols(db)];
      for (const key of own) {
        assert.notEqual((db as unknown as Record<PropertyKey, unknown>)[key], store, String(key));
      }
      const exported = [...Object.keys(prismq), ...Object.keys(testing)];
      for (const name of ["storeOf", "attachStore", "openStore", "SqliteStore", "Store"]) {
        assert.ok(!exported.includes(name), name);
      }
    } finally {
      await db.close();
    }
  });

  test("storeOf refuses anything but a QueueDatabase", () => {
    for (const value of [{}, null, { store: {} }]) {
      assert.throws(() => storeOf(value as unknown as QueueDatabase), /^TypeError: Expected a QueueDatabase/);
    }
  });
});

describe("QueueDatabase.close", () => {
  test("resolves once the connection is given back, and closing again returns the same promise", async () => {
    const { dir, remove } = makeTempDir();
    const path = join(dir, "queue.db");
    try {
      const db = new QueueDatabase(path);
      await db.initializeSchema();
      assert.ok(openDatabaseFiles().includes(resolve(path)));
      const closing = db.close();
      assert.ok(closing instanceof Promise);
      assert.equal(db.close(), closing);
      assert.equal(await closing, undefined);
      assert.equal(db.close(), closing, "after it resolved too");
      assert.ok(!openDatabaseFiles().includes(resolve(path)), "the file is no longer open");
    } finally {
      remove();
    }
  });

  test("closing one handle on a file leaves another open; the last one closes the file", async () => {
    const { dir, remove } = makeTempDir();
    const path = join(dir, "queue.db");
    try {
      const first = new QueueDatabase(path);
      const second = new QueueDatabase(path);
      await first.initializeSchema();
      await first.close();
      await first.close();
      assert.ok(openDatabaseFiles().includes(resolve(path)), "the second handle still holds it");
      await second.initializeSchema();
      await second.close();
      assert.ok(!openDatabaseFiles().includes(resolve(path)));
    } finally {
      remove();
    }
  });

  test("a database in memory closes the same way", async () => {
    const db = new QueueDatabase(":memory:");
    await db.initializeSchema();
    const closing = db.close();
    assert.equal(db.close(), closing);
    await closing;
  });
});

describe("QueueDatabase.backup", () => {
  test("refuses a database its store cannot copy to a local file, naming what kind it is", async () => {
    const { dir, remove } = makeTempDir();
    const server = await startLibsqlServer(join(dir, "server.db"));
    // Credentials in the URL, which neither db.url nor the message may show.
    const db = new QueueDatabase(`${server.url.replace("http://", "http://app:s3cret@")}?authToken=t0ken`);
    try {
      assert.equal(db.url, server.url.replace("http://", "http://app@"));
      await db.initializeSchema();
      const path = join(dir, "copy.db");
      for (const overwrite of [false, true]) {
        const error = await rejectionOf(db.backup(path, { overwrite }));
        assert.ok(error instanceof BackupRefusedError, `expected a BackupRefusedError, got ${error}`);
        assert.equal(error.code, "BACKUP_REFUSED");
        assert.equal(
          error.message,
          `Cannot back up the database at '${db.url}': it is a libSQL server, which PrismQ cannot copy ` +
            `to a local file. Back it up with the database's own tools.`,
        );
        assert.doesNotMatch(error.message, /s3cret|t0ken/);
      }
      assert.equal(existsSync(path), false);
    } finally {
      await db.close();
      await server.close();
      remove();
    }
  });
});

describe("two copies of PrismQ in one process", () => {
  test("a database made by one copy is used by the other's queues and workers", async () => {
    // A second copy of the sources, as two packages that each depend on PrismQ would load; inside the
    // repository, so that it resolves the same dependencies.
    const copy = join(REPO, `.copy-${process.pid}`);
    cpSync(join(REPO, "src"), join(copy, "src"), { recursive: true });
    cpSync(join(REPO, "mod.ts"), join(copy, "mod.ts"));
    const db = new QueueDatabase(":memory:");
    try {
      const other: typeof import("../mod.ts") = await import(pathToFileURL(join(copy, "mod.ts")).href);
      assert.notEqual(other.Queue, Queue, "the copy is a module of its own");
      await db.initializeSchema();
      const task = await new other.Queue(db).enqueue("copied", { n: 1 });
      const ran: number[] = [];
      const worker = new other.WorkerEngine({ db, workerId: "w" });
      const summary = await worker.runLoop({ untilEmpty: true, taskHandler: (t) => void ran.push(t.id) });
      assert.equal(summary.completed, 1);
      assert.deepEqual(ran, [task.id]);
      assert.equal((await new Queue(db).get(task.id))?.status, "completed");
    } finally {
      await db.close();
      rmSync(copy, { recursive: true, force: true });
    }
  });
});
