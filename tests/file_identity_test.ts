/**
 * A database file deleted, moved or replaced under a running worker stops it with an error that says so,
 * rather than leaving it working on a file nobody else can see.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { DatabaseError, Queue, QueueDatabase, TaskHandlerRegistry, WorkerEngine } from "../mod.ts";
import { makeTempDir, rejectionOf, within } from "./_helpers.ts";

for (const what of ["deleted", "moved", "replaced"] as const) {
  test(`a worker whose database file is ${what} stops with an error naming the file`, async () => {
    const { dir, remove } = makeTempDir("prismq-file-");
    const path = join(dir, "queue.db");
    const db = new QueueDatabase(path);
    try {
      await db.initializeSchema();
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("t", () => {});
      const worker = new WorkerEngine({ db, workerId: "w", handlerRegistry: registry, pollIntervalMs: 20 });
      const loop = worker.runLoop();
      await new Queue(db).enqueue("t");
      if (what === "deleted") {
        for (const suffix of ["", "-wal", "-shm"]) rmSync(path + suffix, { force: true });
      } else if (what === "moved") {
        renameSync(path, join(dir, "elsewhere.db"));
      } else {
        copyFileSync(path, join(dir, "copy.db"));
        renameSync(join(dir, "copy.db"), path);
      }
      const error = await within(15_000, "the worker's loop", rejectionOf(loop));
      assert.ok(error instanceof DatabaseError, String(error));
      const how = what === "replaced" ? "replaced by another file" : "deleted or moved";
      assert.match(
        error.message,
        new RegExp(`The database file '.*queue\\.db' was ${how} while this process`),
      );
      // Every later use says the same, rather than writing where nobody will look.
      await assert.rejects(new Queue(db).enqueue("t"), /was (deleted|replaced)/);
    } finally {
      db.close();
      remove();
    }
  });
}
