/**
 * A database file deleted, moved or replaced under a running worker stops it with an error that says so,
 * rather than leaving it working on a file nobody else can see.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, readdirSync, renameSync, rmSync } from "node:fs";
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
      await db.close();
      remove();
    }
  });
}

describe("a database opened by a relative path is the same file after the process changes folder", () => {
  const FIXTURE = new URL("./fixtures/chdir_worker.ts", import.meta.url).pathname;

  /** Runs the fixture in a process of its own, from `first` then `second`; returns what it printed. */
  async function inAnotherProcess(
    scenario: string,
  ): Promise<{ result: Record<string, unknown>; first: string[]; second: string[] }> {
    const first = makeTempDir("prismq-cwd-a-");
    const second = makeTempDir("prismq-cwd-b-");
    try {
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", FIXTURE, first.dir, second.dir, scenario],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const decoder = new TextDecoder();
      assert.equal(code, 0, decoder.decode(stderr));
      assert.doesNotMatch(decoder.decode(stderr), /\S/, "nothing on stderr");
      return {
        result: JSON.parse(decoder.decode(stdout)),
        first: readdirSync(first.dir).filter((name) => name.startsWith("queue.db")).sort(),
        second: readdirSync(second.dir).filter((name) => name.startsWith("queue.db")).sort(),
      };
    } finally {
      first.remove();
      second.remove();
    }
  }

  test("a worker goes on working after chdir(), with no false 'deleted or moved'", async () => {
    const { result, second } = await inAnotherProcess("work");
    assert.equal(result.error, undefined);
    assert.deepEqual(result.tasks, ["completed", "completed"]);
    assert.deepEqual(second, [], "nothing was created in the new working folder");
  });

  test("the same relative path opened after chdir() is the new folder's file, not the one open already", async () => {
    const { result, second } = await inAnotherProcess("reopen");
    assert.equal(result.error, undefined);
    assert.deepEqual(result.tasks, ["queued"]);
    assert.equal(result.otherTasks, 2);
    assert.ok(second.includes("queue.db"), `a database was created in the second folder: ${second}`);
  });

  test("a file deleted after chdir() is still reported as deleted, by its absolute path", async () => {
    const { result } = await inAnotherProcess("delete");
    assert.match(
      String(result.error),
      /^DatabaseError: The database file '\/.*prismq-cwd-a-.*\/queue\.db' was deleted or moved while/,
    );
  });
});
