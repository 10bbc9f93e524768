/**
 * Results, progress and waiting: a handler's return value stored as its task's result (refused, with the
 * reason, when it is not JSON or too large), `ctx.progress()` under the lease, and `Queue.waitFor`, in one
 * process and with the worker in another.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import {
  LeaseLostError,
  Queue,
  QueueDatabase,
  TaskHandlerRegistry,
  TaskNotFoundError,
  WaitTimeoutError,
  WorkerEngine,
} from "../mod.ts";
import { PROCESS_DATABASES } from "./_databases.ts";
import { deferred, makeTempDir, withDb } from "./_helpers.ts";

function engine(db: QueueDatabase, registry: TaskHandlerRegistry, maxResultBytes?: number) {
  return new WorkerEngine({ db, workerId: "w", handlerRegistry: registry, maxResultBytes });
}

describe("results and progress", () => {
  test("a handler's return value is its task's result; nothing returned leaves it null", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("sum", (task) => (task.payload as number[]).reduce((a, b) => a + b, 0));
      registry.registerHandler(
        "report",
        () => Promise.resolve({ rows: [1, 2], at: new Date(0), text: "é 😀" }),
      );
      registry.registerHandler("quiet", () => {});
      const sum = await queue.enqueue("sum", [1, 2, 3]);
      const report = await queue.enqueue("report");
      const quiet = await queue.enqueue("quiet");
      assert.equal(sum.result, null);
      await engine(db, registry).runLoop({ untilEmpty: true });
      assert.equal((await queue.get(sum.id))!.result, 6);
      assert.deepEqual((await queue.get(report.id))!.result, {
        rows: [1, 2],
        at: "1970-01-01T00:00:00.000Z",
        text: "é 😀",
      });
      const none = (await queue.get(quiet.id))!;
      assert.deepEqual([none.status, none.result], ["completed", null]);
    });
  });

  test("a result that is not JSON or too large completes the task without a result, saying why in its log", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("bigint", () => 1n);
      registry.registerHandler("cycle", () => {
        const a: Record<string, unknown> = {};
        a.self = a;
        return a;
      });
      registry.registerHandler("function", () => () => 1);
      registry.registerHandler("huge", () => "x".repeat(2000));
      const ids = await Promise.all(
        ["bigint", "cycle", "function", "huge"].map(async (type) => (await queue.enqueue(type)).id),
      );
      await engine(db, registry, 1000).runLoop({ untilEmpty: true });
      const [bigint, cycle, fn, huge] = await Promise.all(ids.map(async (id) => (await queue.get(id))!));
      const why = async (id: number) => {
        const lines = await queue.logs(id);
        assert.equal(lines.length, 1);
        assert.equal(lines[0]!.level, "warn");
        assert.match(lines[0]!.message, /The task is completed without a result\.$/);
        return lines[0]!.message;
      };
      for (const task of [bigint, cycle, fn, huge]) {
        assert.deepEqual(
          [task!.status, task!.attempts, task!.result, task!.errorMessage],
          ["completed", 1, null, null],
          task!.type,
        );
      }
      assert.match(
        await why(bigint!.id),
        new RegExp(`^The result of task ${bigint!.id} cannot be written as JSON: .*BigInt`),
      );
      assert.match(await why(cycle!.id), /cannot be written as JSON: .*circular/i);
      assert.match(await why(fn!.id), /cannot be written as JSON \(it is a function\)/);
      assert.match(
        await why(huge!.id),
        /is 2002 bytes of JSON, over the limit of 1000 \(the worker's maxResultBytes\)/,
      );
    });
  });

  test("ctx.progress records the latest value under the lease, coalesces calls, and refuses after loss", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const registry = new TaskHandlerRegistry();
      const halfway = deferred<void>();
      const resume = deferred<void>();
      let afterCancel: unknown;
      const handlerDone = deferred<void>();
      registry.registerHandler("steps", async (_task, ctx) => {
        // Three calls at once: each resolves once its value, or a later one, is written.
        await Promise.all([ctx.progress({ done: 1 }), ctx.progress({ done: 2 }), ctx.progress({ done: 3 })]);
        await assert.rejects(ctx.progress(1n), /The progress of task \d+ cannot be written as JSON/);
        halfway.resolve();
        await resume.promise;
        afterCancel = await ctx.progress({ done: 4 }).catch((error) => error);
        handlerDone.resolve();
      });
      const task = await queue.enqueue("steps");
      const running = engine(db, registry).claimAndProcess();
      await halfway.promise;
      assert.deepEqual((await queue.get(task.id))!.progress, { done: 3 });
      await queue.cancel(task.id);
      resume.resolve();
      await running;
      // The attempt ended with the cancel; the handler goes on by itself until it returns.
      await handlerDone.promise;
      assert.ok(afterCancel instanceof LeaseLostError, `progress after the cancel: ${afterCancel}`);
      const after = (await queue.get(task.id))!;
      assert.deepEqual([after.status, after.progress], ["cancelled", { done: 3 }]);
    });
  });
});

describe("Queue.waitFor", () => {
  test("resolves with the task once completed, failed or cancelled; at once when it already is", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("ok", () => "done");
      registry.registerHandler("bad", () => {
        throw new Error("no");
      });
      const ok = await queue.enqueue("ok");
      const bad = await queue.enqueue("bad", {}, { maxAttempts: 1 });
      const doomed = await queue.enqueue("ok", {}, { delayMs: 3_600_000 });
      // A long poll: what ends these waits is a wake-up, not the poll.
      const waits = [ok, bad, doomed].map((task) => queue.waitFor(task.id, { pollIntervalMs: 3_600_000 }));
      await engine(db, registry).runLoop({ untilEmpty: true });
      await queue.cancel(doomed.id);
      const [okDone, badDone, cancelled] = await Promise.all(waits);
      assert.deepEqual([okDone.status, okDone.result], ["completed", "done"]);
      assert.deepEqual([badDone.status, badDone.errorMessage], ["failed", "no"]);
      assert.equal(cancelled.status, "cancelled");
      assert.equal((await queue.waitFor(ok.id, { timeoutMs: 0 })).status, "completed");
    });
  });

  test("rejects on timeout, on abort and for an unknown id, leaving the task as it is", async () => {
    const db = new QueueDatabase(":memory:");
    try {
      await db.initializeSchema();
      const queue = new Queue(db);
      const task = await queue.enqueue("never_run");
      await assert.rejects(queue.waitFor(task.id, { timeoutMs: 20 }), (error: unknown) => {
        assert.ok(error instanceof WaitTimeoutError);
        assert.equal(error.code, "WAIT_TIMEOUT");
        assert.match(
          error.message,
          new RegExp(`^Task ${task.id} did not finish within 20 ms \\(it is queued\\)`),
        );
        return true;
      });
      const controller = new AbortController();
      const waiting = queue.waitFor(task.id, { signal: controller.signal });
      controller.abort(new Error("client went away"));
      await assert.rejects(waiting, /client went away/);
      await assert.rejects(queue.waitFor(task.id, { signal: controller.signal }), /client went away/);
      await assert.rejects(queue.waitFor(task.id + 100), TaskNotFoundError);
      await assert.rejects(queue.waitFor(task.id, { timeoutMs: -1 }), RangeError);
      assert.equal((await queue.get(task.id))!.status, "queued");
    } finally {
      await db.close();
    }
  });

  for (const database of PROCESS_DATABASES) {
    test(`waits for a worker in another process to finish tasks on ${database.name}`, {
      skip: database.skip,
    }, async () => {
      const { dir, remove } = makeTempDir();
      const { location, drop } = await database.create(dir);
      const fixture = new URL("./fixtures/result_worker.ts", import.meta.url).pathname;
      const child = spawn(process.execPath, ["run", "-A", fixture, location], {
        stdio: ["pipe", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      child.stdout!.on("data", (chunk) => (out += chunk));
      child.stderr!.on("data", (chunk) => (err += chunk));
      const exit = new Promise<number | null>((resolve) => child.on("exit", resolve));
      const db = new QueueDatabase(location);
      try {
        await db.initializeSchema();
        const queue = new Queue(db);
        const double = await queue.enqueue("double", { n: 21 });
        const refused = await queue.enqueue("refuse");
        // A poll of an hour: only the other process's commit can wake these in time.
        const waits = [double, refused].map((task) =>
          queue.waitFor(task.id, { pollIntervalMs: 3_600_000, timeoutMs: 120_000 })
        );
        while (!out.includes("ready")) {
          if (child.exitCode !== null) throw new Error(`the worker exited: ${err}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        child.stdin!.write("go\n");
        const [doubled, failed] = await Promise.all(waits);
        assert.deepEqual([doubled.status, doubled.result, doubled.progress], ["completed", 42, {
          half: true,
        }]);
        assert.deepEqual([failed.status, failed.errorMessage], ["failed", "refused"]);
        assert.equal(await exit, 0, err);
      } finally {
        child.kill();
        await exit;
        await db.close();
        await drop();
        remove();
      }
    });
  }
});
