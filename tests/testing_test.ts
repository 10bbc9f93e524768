/**
 * prismq/testing: the in-memory test queue, drain() under the manual clock, and the assertions on what was
 * enqueued; and the README's example test and the module's JSDoc examples, run as written.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import process from "node:process";
import * as v from "valibot";
import {
  defineHandler,
  type ManualClock,
  NonRetryableError,
  PayloadValidationError,
  systemClock,
  type Task,
  TaskHandlerNotRegisteredError,
  TaskHandlerRegistry,
} from "../mod.ts";
import {
  assertEnqueued,
  assertNotEnqueued,
  createTestQueue,
  listEnqueued,
  TaskAssertionError,
  type TestQueue,
  type TestQueueOptions,
} from "../testing.ts";
import { REPO } from "./_helpers.ts";

const HOUR = 3_600_000;

/** A test queue, closed when `fn` settles. */
async function withTestQueue<T>(
  options: TestQueueOptions,
  fn: (testQueue: TestQueue) => Promise<T>,
): Promise<T> {
  const testQueue = await createTestQueue(options);
  try {
    return await fn(testQueue);
  } finally {
    await testQueue.close();
  }
}

/** A registry with one handler. */
function registryWith(type: string, handler: (task: Task) => unknown): TaskHandlerRegistry {
  const registry = new TaskHandlerRegistry();
  registry.registerHandler(type, handler);
  return registry;
}

/** What a rejected promise rejected with, failing when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  assert.fail("expected a rejection");
}

describe("createTestQueue()", () => {
  test("gives each test its own migrated in-memory database", async () => {
    await withTestQueue({}, async (first) => {
      await withTestQueue({}, async (second) => {
        assert.equal(first.db.url, ":memory:");
        await first.queue.enqueue("only_in_first", {});
        assert.equal((await first.queue.list()).length, 1);
        assert.equal((await second.queue.list()).length, 0);
      });
    });
  });

  test("without a registry, enqueue takes any type and drain() fails the unregistered ones at once", async () => {
    await withTestQueue({}, async (testQueue) => {
      const task = await testQueue.queue.enqueue("unknown", { a: 1 });
      const ran = await testQueue.drain();
      assert.deepEqual(ran, [{
        id: task.id,
        type: "unknown",
        payload: { a: 1 },
        outcome: "failed",
        error: "No handler registered for task type 'unknown'. Registered types: []",
        attempts: 1,
        retryAt: null,
      }]);
    });
  });

  test("with the application's registry, enqueue refuses unknown types and invalid payloads", async () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler(defineHandler({
      type: "greet",
      schema: v.object({ name: v.string() }),
      handle: () => {},
    }));
    await withTestQueue({ registry }, async (testQueue) => {
      assert.equal(testQueue.registry, registry);
      await assert.rejects(testQueue.queue.enqueue("other", {}), TaskHandlerNotRegisteredError);
      await assert.rejects(testQueue.queue.enqueue("greet", { name: 7 }), PayloadValidationError);
      await testQueue.queue.enqueue("greet", { name: "Ada" });
      assert.deepEqual((await testQueue.drain()).map((r) => r.outcome), ["completed"]);
    });
  });

  test("refuses a clock that cannot be moved and a retry policy that makes no sense, naming them", async () => {
    await assert.rejects(
      createTestQueue({ clock: systemClock as ManualClock }),
      (error: Error) => error instanceof TypeError && /ManualClock/.test(error.message),
    );
    await assert.rejects(
      createTestQueue({ retry: { multiplier: 0 } }),
      (error: Error) => error instanceof RangeError && /retry\.multiplier/.test(error.message),
    );
    await assert.rejects(createTestQueue({ registry: {} as TaskHandlerRegistry }), TypeError);
  });
});

describe("drain()", () => {
  test("runs every due task, in the claim order, and says how each ended", async () => {
    const seen: unknown[] = [];
    const registry = registryWith("record", (task) => void seen.push(task.payload));
    await withTestQueue({ registry }, async (testQueue) => {
      const low = await testQueue.queue.enqueue("record", { n: 1 }, { priority: 200 });
      const high = await testQueue.queue.enqueue("record", { n: 2 }, { priority: 1 });
      const ran = await testQueue.drain();
      assert.deepEqual(ran.map((r) => [r.id, r.outcome, r.attempts, r.error]), [
        [high.id, "completed", 1, null],
        [low.id, "completed", 1, null],
      ]);
      assert.deepEqual(seen, [{ n: 2 }, { n: 1 }]);
      assert.equal((await testQueue.queue.get(low.id))?.status, "completed");
      assert.deepEqual(await testQueue.drain(), []);
    });
  });

  test("runs a delayed task only once the clock is advanced to its time", async () => {
    await withTestQueue({ registry: registryWith("later", () => {}) }, async (testQueue) => {
      const delayed = await testQueue.queue.enqueue("later", {}, { delayMs: HOUR });
      const at = await testQueue.queue.enqueue("later", {}, {
        runAt: new Date(testQueue.clock.now() + 2 * HOUR),
      });
      assert.deepEqual(await testQueue.drain(), []);
      testQueue.clock.advance(HOUR - 1);
      assert.deepEqual(await testQueue.drain(), []);
      testQueue.clock.advance(1);
      assert.deepEqual((await testQueue.drain()).map((r) => r.id), [delayed.id]);
      testQueue.clock.advance(HOUR);
      assert.deepEqual((await testQueue.drain()).map((r) => r.id), [at.id]);
    });
  });

  test("a failing handler retries after exact backoffs as the clock moves, then fails for good", async () => {
    let calls = 0;
    const registry = registryWith("flaky", () => {
      throw new Error(`attempt ${++calls} failed`);
    });
    await withTestQueue({ registry }, async (testQueue) => {
      const task = await testQueue.queue.enqueue("flaky", { x: 1 }, { maxAttempts: 3 });
      const [first] = await testQueue.drain();
      assert.deepEqual(first, {
        id: task.id,
        type: "flaky",
        payload: { x: 1 },
        outcome: "retrying",
        error: "attempt 1 failed",
        attempts: 1,
        retryAt: testQueue.clock.now() + 1000,
      });
      await assertEnqueued(testQueue, { type: "flaky", runAfter: first.retryAt! });

      testQueue.clock.advance(999);
      assert.deepEqual(await testQueue.drain(), []);
      testQueue.clock.advance(1);
      const [second] = await testQueue.drain();
      assert.deepEqual([second.outcome, second.attempts, second.retryAt], [
        "retrying",
        2,
        testQueue.clock.now() + 2000,
      ]);

      testQueue.clock.advance(2000);
      const [third] = await testQueue.drain();
      assert.deepEqual([third.outcome, third.attempts, third.error, third.retryAt], [
        "failed",
        3,
        "attempt 3 failed",
        null,
      ]);
      assert.equal((await testQueue.queue.get(task.id))?.status, "failed");
      testQueue.clock.advance(HOUR);
      assert.deepEqual(await testQueue.drain(), []);
      assert.equal(calls, 3);
    });
  });

  test("follows the retry policy and jitter source it is given", async () => {
    const registry = registryWith("flaky", () => {
      throw new Error("no");
    });
    await withTestQueue(
      { registry, retry: { initialDelayMs: 10, multiplier: 3, jitter: 0.5 }, random: () => 0 },
      async (testQueue) => {
        await testQueue.queue.enqueue("flaky", {});
        const [first] = await testQueue.drain();
        assert.equal(first.retryAt, testQueue.clock.now() + 5); // 10 ms, less 50 %
        testQueue.clock.advance(5);
        const [second] = await testQueue.drain();
        assert.equal(second.retryAt, testQueue.clock.now() + 15); // 30 ms, less 50 %
      },
    );
  });

  test("fails at once on NonRetryableError and on a payload its schema refuses", async () => {
    // No registry: the queue takes any payload, as one written by another version of the application.
    await withTestQueue({}, async (testQueue) => {
      testQueue.registry.registerHandler("fatal", () => {
        throw new NonRetryableError("card declined");
      });
      testQueue.registry.registerHandler(defineHandler({
        type: "typed",
        schema: v.object({ n: v.number() }),
        handle: () => {},
      }));
      await testQueue.queue.enqueue("fatal", {});
      await testQueue.queue.enqueue("typed", { n: "seven" });
      const ran = await testQueue.drain();
      assert.deepEqual(ran.map((r) => [r.type, r.outcome, r.attempts]), [
        ["fatal", "failed", 1],
        ["typed", "failed", 1],
      ]);
      assert.equal(ran[0].error, "card declined");
      assert.match(ran[1].error!, /typed/);
    });
  });

  test("runs the due tasks its handlers enqueue in the same drain, and leaves the later ones queued", async () => {
    await withTestQueue({}, async (testQueue) => {
      testQueue.registry.registerHandler("signup", async (task) => {
        await testQueue.queue.enqueue("welcome", task.payload);
        await testQueue.queue.enqueue("nudge", task.payload, { delayMs: 24 * HOUR });
      });
      testQueue.registry.registerHandler("welcome", () => {});
      testQueue.registry.registerHandler("nudge", () => {});
      await testQueue.queue.enqueue("signup", { user: 1 });
      assert.deepEqual((await testQueue.drain()).map((r) => r.type), ["signup", "welcome"]);
      await assertEnqueued(testQueue, { type: "nudge", payload: { user: 1 } });
      testQueue.clock.advance(24 * HOUR);
      assert.deepEqual((await testQueue.drain()).map((r) => r.type), ["nudge"]);
    });
  });

  test("reports a task cancelled while its handler ran as cancelled", async () => {
    await withTestQueue({}, async (testQueue) => {
      testQueue.registry.registerHandler("self_cancel", async (task) => {
        await testQueue.queue.cancel(task.id);
      });
      const task = await testQueue.queue.enqueue("self_cancel", {});
      const ran = await testQueue.drain();
      assert.deepEqual(ran.map((r) => [r.id, r.outcome, r.error]), [[task.id, "cancelled", null]]);
      assert.equal((await testQueue.queue.get(task.id))?.status, "cancelled");
    });
  });

  test("with types, runs only those types", async () => {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("a", () => {});
    registry.registerHandler("b", () => {});
    await withTestQueue({ registry }, async (testQueue) => {
      await testQueue.queue.enqueue("a", {});
      await testQueue.queue.enqueue("b", {});
      assert.deepEqual((await testQueue.drain({ types: ["b"] })).map((r) => r.type), ["b"]);
      await assertEnqueued(testQueue, { type: "a" });
    });
  });

  test("leaves no worker row behind", async () => {
    await withTestQueue({ registry: registryWith("x", () => {}) }, async (testQueue) => {
      await testQueue.queue.enqueue("x", {});
      await testQueue.drain();
      assert.deepEqual(await testQueue.queue.workers(), []);
    });
  });

  test("past its timeoutMs, aborts the handler, hands its task back and names it", async () => {
    let signal: AbortSignal | undefined;
    const registry = new TaskHandlerRegistry();
    registry.registerHandler("stuck", (_task, ctx) => {
      signal = ctx.signal;
      return new Promise(() => {}); // never settles
    });
    await withTestQueue({ registry }, async (testQueue) => {
      const task = await testQueue.queue.enqueue("stuck", {});
      const error = await rejection(testQueue.drain({ timeoutMs: 50 }));
      assert.match(
        error.message,
        /drain\(\) gave up after 50 ms: task \d+ \(type 'stuck'\) was still running/,
      );
      assert.equal(signal?.aborted, true);
      const after = await testQueue.queue.get(task.id);
      assert.deepEqual([after?.status, after?.attempts], ["queued", 0]);
      // The test queue still works afterwards.
      registry.registerHandler("stuck", () => {}, { allowOverride: true });
      assert.deepEqual((await testQueue.drain()).map((r) => r.outcome), ["completed"]);
    });
  });

  test("stops at maxTasks when handlers enqueue without end, and says so", async () => {
    await withTestQueue({}, async (testQueue) => {
      testQueue.registry.registerHandler(
        "again",
        async () => void await testQueue.queue.enqueue("again", {}),
      );
      await testQueue.queue.enqueue("again", {});
      const error = await rejection(testQueue.drain({ maxTasks: 5 }));
      assert.match(error.message, /ran 5 attempts and tasks are still runnable.*maxTasks/s);
      assert.equal((await listEnqueued(testQueue, { status: "completed" })).length, 5);
    });
  });

  test("ends at maxTasks without complaint when nothing more is runnable", async () => {
    await withTestQueue({ registry: registryWith("x", () => {}) }, async (testQueue) => {
      await testQueue.queue.enqueueMany([{ type: "x" }, { type: "x" }]);
      assert.equal((await testQueue.drain({ maxTasks: 2 })).length, 2);
    });
  });

  test("refuses a second drain while one runs, and bad options", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const registry = registryWith("gated", () => {
      started();
      return gate;
    });
    await withTestQueue({ registry }, async (testQueue) => {
      await testQueue.queue.enqueue("gated", {});
      const first = testQueue.drain();
      await running;
      await assert.rejects(testQueue.drain(), /already running/);
      release();
      assert.equal((await first).length, 1);
      await assert.rejects(testQueue.drain({ timeoutMs: 0 }), RangeError);
      await assert.rejects(testQueue.drain({ maxTasks: 1.5 }), RangeError);
    });
  });
});

describe("assertEnqueued(), assertNotEnqueued(), listEnqueued()", () => {
  test("match a type and a partial payload, recursively, and return the oldest match", async () => {
    await withTestQueue({}, async (testQueue) => {
      const payload = { user: { id: 7, name: "Ada" }, tags: ["a", "b"], note: null };
      const first = await testQueue.queue.enqueue("email", payload);
      await testQueue.queue.enqueue("email", payload);
      const found = await assertEnqueued(testQueue, { type: "email", payload: { user: { id: 7 } } });
      assert.equal(found.id, first.id);
      await assertEnqueued(testQueue, { payload: { tags: ["a", "b"], note: null } });
      await assertNotEnqueued(testQueue, { payload: { tags: ["a"] } }); // arrays match whole
      await assertNotEnqueued(testQueue, { payload: { user: { id: "7" } } }); // values by ===
      await assertNotEnqueued(testQueue, { payload: { user: { id: 7, admin: true } } });
      await assertNotEnqueued(testQueue, { type: "sms" });
      assert.equal((await listEnqueued(testQueue, { type: "email" })).length, 2);
    });
  });

  test("match priority, runAfter (Date or epoch ms), maxAttempts and idempotencyKey exactly", async () => {
    await withTestQueue({}, async (testQueue) => {
      const runAt = testQueue.clock.now() + HOUR;
      await testQueue.queue.enqueue("report", {}, {
        priority: 5,
        runAt,
        maxAttempts: 2,
        idempotencyKey: "daily",
      });
      await testQueue.queue.enqueue("report", {});
      const filter = { type: "report", priority: 5, maxAttempts: 2, idempotencyKey: "daily" };
      await assertEnqueued(testQueue, { ...filter, runAfter: runAt });
      await assertEnqueued(testQueue, { ...filter, runAfter: new Date(runAt) });
      await assertNotEnqueued(testQueue, { ...filter, runAfter: runAt + 1 });
      await assertNotEnqueued(testQueue, { ...filter, priority: 6 });
      assert.equal((await listEnqueued(testQueue, { type: "report", idempotencyKey: null })).length, 1);
    });
  });

  test("look at queued tasks by default (due, scheduled or awaiting a retry); status widens the search", async () => {
    await withTestQueue({ registry: registryWith("job", () => {}) }, async (testQueue) => {
      await testQueue.queue.enqueue("job", { n: 1 });
      await testQueue.drain();
      await testQueue.queue.enqueue("job", { n: 2 }, { delayMs: HOUR });
      await assertNotEnqueued(testQueue, { type: "job", payload: { n: 1 } });
      await assertEnqueued(testQueue, { type: "job", payload: { n: 1 }, status: "completed" });
      await assertEnqueued(testQueue, { type: "job", payload: { n: 1 }, status: "any" });
      await assertEnqueued(testQueue, { type: "job", payload: { n: 2 }, status: ["queued", "running"] });
      assert.deepEqual(
        (await listEnqueued(testQueue, { type: "job", status: "any" })).map((t) => t.payload),
        [{ n: 1 }, { n: 2 }],
      );
    });
  });

  test("a failed assertEnqueued() throws a TaskAssertionError that lists the queued tasks", async () => {
    await withTestQueue({}, async (testQueue) => {
      await testQueue.queue.enqueue("email", { to: "bob@example.com" }, { priority: 3 });
      await testQueue.queue.enqueue("sms", { to: "+100" }, { idempotencyKey: "k1" });
      const error = await rejection(
        assertEnqueued(testQueue, { type: "email", payload: { to: "ada@example.com" } }),
      );
      assert.ok(error instanceof TaskAssertionError);
      assert.ok(error instanceof Error);
      assert.equal(error.name, "TaskAssertionError");
      const runAfter = new Date(testQueue.clock.now()).toISOString();
      assert.equal(
        error.message,
        `Expected a queued task matching {"type":"email","payload":{"to":"ada@example.com"}}, but none ` +
          `matches. Queued tasks (2):\n` +
          `  #1 email {"to":"bob@example.com"} (queued, priority 3, runAfter ${runAfter}, attempts 0/5)\n` +
          `  #2 sms {"to":"+100"} (queued, priority 100, runAfter ${runAfter}, attempts 0/5, ` +
          `idempotencyKey "k1")`,
      );
    });
  });

  test("when no task has the statuses looked at, the message counts the others", async () => {
    await withTestQueue({ registry: registryWith("job", () => {}) }, async (testQueue) => {
      const empty = await rejection(assertEnqueued(testQueue, { type: "job" }));
      assert.equal(
        empty.message,
        `Expected a queued task matching {"type":"job"}, but none matches. ` +
          `There are no queued tasks.`,
      );
      await testQueue.queue.enqueue("job", {});
      await testQueue.drain();
      const error = await rejection(assertEnqueued(testQueue, { type: "job" }));
      assert.match(error.message, /There are no queued tasks; other tasks: 1 completed \(pass `status`/);
    });
  });

  test("a long listing stops after 20 tasks and says how many more there are", async () => {
    await withTestQueue({}, async (testQueue) => {
      await testQueue.queue.enqueueMany(
        Array.from({ length: 25 }, (_, i) => ({ type: "bulk", payload: { i } })),
      );
      const error = await rejection(assertEnqueued(testQueue, { type: "other" }));
      assert.match(error.message, /Queued tasks \(25\):/);
      assert.match(error.message, /#20 bulk \{"i":19\}/);
      assert.doesNotMatch(error.message, /#21 bulk/);
      assert.match(error.message, /… and 5 more$/);
    });
  });

  test("a failed assertNotEnqueued() lists the tasks that match", async () => {
    await withTestQueue({}, async (testQueue) => {
      await testQueue.queue.enqueue("email", { to: "ada@example.com", lang: "en" });
      await testQueue.queue.enqueue("email", { to: "bob@example.com" });
      const error = await rejection(
        assertNotEnqueued(testQueue, { type: "email", payload: { to: "ada@example.com" } }),
      );
      assert.ok(error instanceof TaskAssertionError);
      assert.match(error.message, /^Expected no queued task matching .*, but 1 matches:\n {2}#1 email /);
      assert.doesNotMatch(error.message, /bob/);
    });
  });

  test("take a Queue as well as a test queue, and refuse what is neither or an unknown status", async () => {
    await withTestQueue({}, async (testQueue) => {
      await testQueue.queue.enqueue("email", {});
      await assertEnqueued(testQueue.queue, { type: "email" });
      await assert.rejects(assertEnqueued({} as TestQueue, { type: "email" }), TypeError);
      await assert.rejects(
        assertEnqueued(testQueue, { status: "done" as "queued" }),
        (error: Error) => error instanceof TypeError && /Unknown status "done"/.test(error.message),
      );
      await assert.rejects(assertEnqueued(testQueue, { runAfter: new Date(NaN) }), TypeError);
    });
  });
});

describe("documentation", () => {
  test("the README's example test and every JSDoc example of prismq/testing type-check and pass", async () => {
    // Inside the repository, so that bare imports (valibot) resolve as they do for its own files; .scratch/
    // is ignored by git.
    mkdirSync(join(REPO, ".scratch"), { recursive: true });
    const dir = mkdtempSync(join(REPO, ".scratch", "testing-examples-"));
    try {
      const up = relative(dir, REPO);
      const local = (code: string) =>
        code.replaceAll('"./mod.ts"', `"${up}/mod.ts"`).replaceAll('"./testing.ts"', `"${up}/testing.ts"`)
          .replaceAll('"prismq"', `"${up}/mod.ts"`).replaceAll('"prismq/testing"', `"${up}/testing.ts"`);

      const readme = readFileSync(join(REPO, "README.md"), "utf8");
      const section = readme.slice(readme.indexOf("### Testing your application's tasks"));
      const example = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
      assert.ok(example, "the README's testing section has a ts block");
      for (const [, from] of example.matchAll(/from "([^"]+)"/g)) {
        assert.ok(
          ["node:test", "node:assert/strict", "valibot", "prismq", "prismq/testing"].includes(from),
          from,
        );
      }
      writeFileSync(join(dir, "readme_example_test.ts"), local(example));

      const files = ["testing.ts", "src/testing/test_queue.ts", "src/testing/assertions.ts"];
      const examples = files.flatMap((file) =>
        jsdocBlocks(readFileSync(join(REPO, file), "utf8")).map((code) => ({ file, code }))
      );
      assert.ok(examples.length >= 15, `found ${examples.length} JSDoc examples`);
      const wrappers = examples.map(({ file, code }, i) => {
        writeFileSync(join(dir, `example_${i}.ts`), local(code) + "\nexport {};\n");
        return `Deno.test(${JSON.stringify(`example ${i} of ${file}`)}, async () => {\n` +
          `  await import("./example_${i}.ts");\n});\n`;
      });
      writeFileSync(join(dir, "jsdoc_examples_test.ts"), wrappers.join(""));

      const output = await run(process.execPath, ["test", "-A", "--quiet", dir], 180_000);
      assert.match(output, new RegExp(`ok \\| ${examples.length + 1} passed \\| 0 failed`), output);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The ```ts blocks inside the JSDoc comments of a source file. */
function jsdocBlocks(source: string): string[] {
  const blocks: string[] = [];
  for (const [comment] of source.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    const lines = comment.split("\n").map((line) => line.replace(/^\s*\* ?/, ""));
    let block: string[] | null = null;
    for (const line of lines) {
      if (block === null && line.trim() === "```ts") block = [];
      else if (block !== null && line.trim() === "```") {
        blocks.push(block.join("\n"));
        block = null;
      } else if (block !== null) block.push(line);
    }
  }
  return blocks;
}

/** Runs a command to its end within `timeoutMs`, resolving with its output; rejects with it on failure. */
function run(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: REPO, timeout: timeoutMs, env: { ...process.env, NO_COLOR: "1" } }, (
      error,
      stdout,
      stderr,
    ) => {
      const output = `${stdout}\n${stderr}`;
      if (error) reject(new Error(`${command} ${args.join(" ")} failed: ${error.message}\n${output}`));
      else resolve(output);
    });
  });
}
