/**
 * Integration tests of `WorkerEngine` on a real file: claims, strategies, retries, routing, concurrency,
 * the run loop, shutdown, timeouts, cancellation, logs, the workers table and events.
 *
 * @module
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import {
  type ClaimStrategy,
  defineHandler,
  type HandlerContext,
  LeaseLostError,
  ManualClock,
  NonRetryableError,
  Queue,
  type QueueDatabase,
  type Task,
  type TaskHandler,
  TaskHandlerRegistry,
  TaskTimeoutError,
  WorkerEngine,
  type WorkerEngineOptions,
  type WorkerEvent,
} from "../mod.ts";
import { storeOf } from "../src/store/store_of.ts";
import { deferred, delay, T0, untilAborted, waitFor, withDb, withQueueAtT0 } from "./_helpers.ts";

/** A promise that never settles: a handler that hangs. */
function forever(): Promise<never> {
  return new Promise<never>(() => {});
}

function worker(db: QueueDatabase, options: Partial<WorkerEngineOptions> = {}): WorkerEngine {
  return new WorkerEngine({ db, workerId: "w1", ...options });
}

async function statusOf(queue: Queue, id: number): Promise<string | undefined> {
  return (await queue.get(id))?.status;
}

describe("the life of a task", () => {
  test("the task a handler receives is the stored row, field for field, after a failed attempt", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const task = await queue.enqueue("a", { n: [1, "two"] }, {
        priority: 7,
        maxAttempts: 4,
        idempotencyKey: "field-for-field",
        timeoutMs: 90_000,
      });
      const w = worker(db, { clock, leaseMs: 30_000, retry: { initialDelayMs: 5, jitter: 0 } });
      await w.claimAndProcess(() => {
        throw new Error("first attempt fails");
      });
      clock.advance(10);
      let seen: Task | undefined;
      let stored: Task | undefined;
      await w.claimAndProcess(async (t) => {
        seen = t;
        stored = await queue.get(t.id);
      });
      assert.ok(seen && stored);
      assert.deepEqual(seen, stored);
      assert.equal(seen.id, task.id);
      assert.equal(seen.attempts, 2);
      assert.equal(seen.errorMessage, "first attempt fails");
      assert.equal(seen.idempotencyKey, "field-for-field");
      assert.equal(seen.timeoutMs, 90_000);
      assert.equal(seen.priority, 7);
      assert.equal(seen.maxAttempts, 4);
      assert.equal(seen.createdAt, T0);
    });
  });

  test("a claimed task is 'running' under the worker's lease, then 'completed' with its times and worker", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const task = await queue.enqueue("a", { n: 1 });
      const started = deferred<{ task: Task; ctx: HandlerContext }>();
      const gate = deferred();
      const w = worker(db, { clock, leaseMs: 30_000 });
      const processing = w.claimAndProcess(async (t, ctx) => {
        started.resolve({ task: t, ctx });
        await gate.promise;
      });
      const seen = await started.promise;
      assert.equal(seen.task.id, task.id);
      assert.equal(seen.task.status, "running");
      assert.deepEqual(seen.task.payload, { n: 1 });
      assert.equal(seen.ctx.workerId, "w1");
      assert.equal(seen.ctx.attempt, 1);
      const running = await queue.get(task.id);
      assert.ok(running);
      assert.equal(running.status, "running");
      assert.equal(running.attempts, 1);
      assert.equal(running.lockedBy, "w1");
      assert.equal(running.startedAt, T0);
      assert.equal(running.leaseUntil, T0 + 30_000);
      assert.equal(running.finishedAt, null);
      assert.equal(w.runningCount, 1);

      clock.advance(250);
      gate.resolve();
      assert.equal(await processing, true);
      const done = await queue.get(task.id);
      assert.ok(done);
      assert.equal(done.status, "completed");
      assert.equal(done.attempts, 1);
      assert.equal(done.lockedBy, "w1");
      assert.equal(done.startedAt, T0);
      assert.equal(done.finishedAt, T0 + 250);
      assert.equal(done.updatedAt, T0 + 250);
      assert.equal(done.leaseUntil, null);
      assert.equal(done.errorMessage, null);
      assert.equal(w.runningCount, 0);
    });
  });
});

describe("claim strategies", () => {
  // Enqueued in this order: [name, priority, runAt]. "f" comes last but was due long before the others.
  const TASKS: [string, number, number?][] = [
    ["a", 50],
    ["b", 10],
    ["c", 10],
    ["d", 100],
    ["e", -5],
    ["f", 10, 1],
  ];
  const EXPECTED: Record<Exclude<ClaimStrategy, "weighted_random">, string[]> = {
    priority: ["e", "f", "b", "c", "a", "d"], // lower number first, then due earliest, then oldest
    fifo: ["a", "b", "c", "d", "e", "f"],
    lifo: ["f", "e", "d", "c", "b", "a"],
  };

  for (const [strategy, expected] of Object.entries(EXPECTED) as [ClaimStrategy, string[]][]) {
    test(`the ${strategy} strategy claims tasks one by one and in batches in the order ${expected}`, async () => {
      await withDb(async (db) => {
        const queue = new Queue(db);
        const enqueueAll = () =>
          queue.enqueueMany(
            TASKS.map(([name, priority, runAt]) => ({ type: "t", payload: { name }, priority, runAt })),
          );
        await enqueueAll();
        const order: string[] = [];
        const record: TaskHandler = (task) => void order.push(task.payload.name);
        const one = worker(db, { strategy });
        while (await one.claimAndProcess(record));
        assert.deepEqual(order, expected);

        // A claim of several tasks at once hands them over in the same order.
        await enqueueAll();
        const claimed: string[] = [];
        const batch = worker(db, {
          workerId: "w2",
          strategy,
          concurrency: TASKS.length,
          onEvent: (event) => {
            if (event.type === "claimed") claimed.push((event.task.payload as { name: string }).name);
          },
        });
        const summary = await batch.runLoop({ taskHandler: () => {}, maxIterations: 1 });
        assert.equal(summary.claimed, TASKS.length);
        assert.deepEqual(claimed, expected);
      });
    });
  }

  test("the weighted_random strategy claims every task, strongly preferring low priority numbers", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      // 200 tasks, alternating priority 0 and 1000, so that id order favours neither.
      const tasks = await queue.enqueueMany(
        Array.from({ length: 200 }, (_, i) => ({ type: "t", payload: { i }, priority: i % 2 ? 1000 : 0 })),
      );
      const claimed: Task[] = [];
      const record: TaskHandler = (task) => void claimed.push(task);
      const w = worker(db, { strategy: "weighted_random" });
      for (let i = 0; i < 50; i++) assert.equal(await w.claimAndProcess(record), true);
      // A priority-1000 task has about a 1-in-1000 chance against the ~100 priority-0 ones in each draw.
      const lowFirst = claimed.filter((task) => task.priority === 0).length;
      assert.ok(lowFirst >= 45, `expected nearly all of the first 50 claims at priority 0, got ${lowFirst}`);
      // Random, not simply priority order: 50 draws among equals do not come out in id order.
      const firstIds = claimed.map((task) => task.id);
      assert.notDeepEqual(firstIds, [...firstIds].sort((a, b) => a - b));

      const summary = await w.runLoop({ taskHandler: record, untilEmpty: true });
      assert.equal(summary.completed, 150);
      assert.equal(claimed.length, 200);
      assert.deepEqual(new Set(claimed.map((task) => task.id)), new Set(tasks.map((task) => task.id)));
      assert.equal((await queue.stats()).counts.completed, 200);
    });
  });

  test("a task scheduled for later is not claimable until the clock passes its time", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const atTime = await queue.enqueue("t", { which: "runAt" }, { runAt: T0 + 5000 });
      const delayed = await queue.enqueue("t", { which: "delay" }, { delayMs: 8000 });
      const ran: number[] = [];
      const w = worker(db, { clock });
      const run = () => w.claimAndProcess((task) => void ran.push(task.id));
      assert.equal(await run(), false);
      clock.advance(4999);
      assert.equal(await run(), false);
      clock.advance(1);
      assert.equal(await run(), true);
      assert.deepEqual(ran, [atTime.id]);
      clock.advance(2999);
      assert.equal(await run(), false);
      clock.advance(1);
      assert.equal(await run(), true);
      assert.deepEqual(ran, [atTime.id, delayed.id]);
    });
  });
});

describe("retries and failures", () => {
  test("a throwing handler puts the task back with an exact backoff, and after maxAttempts it fails", async () => {
    await withDb(async (db) => {
      const clock = new ManualClock(Date.now());
      const queue = new Queue(db, { clock });
      const task = await queue.enqueue("flaky", {}, { maxAttempts: 4 });
      const attempts: number[] = [];
      const handler: TaskHandler = (_task, ctx) => {
        attempts.push(ctx.attempt);
        throw new Error(`boom ${ctx.attempt}`);
      };
      const events: WorkerEvent[] = [];
      const w = worker(db, { clock, random: () => 0.5, onEvent: (event) => events.push(event) });

      for (const [attempt, backoff] of [[1, 1000], [2, 2000], [3, 4000]]) {
        assert.equal(await w.claimAndProcess(handler), true);
        const after = await queue.get(task.id);
        assert.ok(after);
        assert.equal(after.status, "queued", `after attempt ${attempt}`);
        assert.equal(after.attempts, attempt);
        assert.equal(after.runAfter, clock.now() + backoff, `backoff after attempt ${attempt}`);
        assert.equal(after.errorMessage, `boom ${attempt}`);
        assert.equal(after.leaseUntil, null);
        assert.equal(after.finishedAt, null);
        clock.advance(backoff - 1);
        assert.equal(await w.claimAndProcess(handler), false, `not claimable before the backoff ends`);
        clock.advance(1);
      }
      assert.equal(await w.claimAndProcess(handler), true);
      const failed = await queue.get(task.id);
      assert.ok(failed);
      assert.equal(failed.status, "failed");
      assert.equal(failed.attempts, 4);
      assert.equal(failed.errorMessage, "boom 4");
      assert.equal(failed.finishedAt, clock.now());
      assert.deepEqual(attempts, [1, 2, 3, 4]);
      assert.equal(await w.claimAndProcess(handler), false);

      const outcomes = events.filter((e) => e.type !== "claimed").map((e) => e.type);
      assert.deepEqual(outcomes, ["retrying", "retrying", "retrying", "failed"]);
    });
  });

  test("a NonRetryableError fails the task at once, whatever attempts remain", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const task = await queue.enqueue("charge", {}, { maxAttempts: 5 });
      const w = worker(db);
      assert.equal(
        await w.claimAndProcess(() => {
          throw new NonRetryableError("card declined");
        }),
        true,
      );
      const failed = await queue.get(task.id);
      assert.equal(failed?.status, "failed");
      assert.equal(failed?.attempts, 1);
      assert.equal(failed?.errorMessage, "card declined");
    });
  });

  test("a task whose type has no handler fails at once with a message listing the registered types", async () => {
    await withDb(async (db) => {
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("b", () => {});
      registry.registerHandler("a", () => {});
      const queue = new Queue(db); // not bound to the registry, so the task gets in
      const task = await queue.enqueue("x", {}, { maxAttempts: 5 });
      const events: WorkerEvent[] = [];
      const w = worker(db, { handlerRegistry: registry, onEvent: (e) => events.push(e) });
      assert.equal(await w.claimAndProcess(), true);
      const failed = await queue.get(task.id);
      assert.equal(failed?.status, "failed");
      assert.equal(failed?.attempts, 1);
      assert.equal(
        failed?.errorMessage,
        "No handler registered for task type 'x'. Registered types: ['a', 'b']",
      );
      const last = events.at(-1);
      assert.equal(last?.type, "failed");
      assert.equal(await w.claimAndProcess(), false);
    });
  });

  test("a payload that fails a defineHandler schema fails the task at once, naming the field", async () => {
    await withDb(async (db) => {
      const registry = new TaskHandlerRegistry();
      let called = false;
      registry.registerHandler(defineHandler({
        type: "email",
        schema: v.object({ to: v.string() }),
        handle: () => void (called = true),
      }));
      const queue = new Queue(db);
      const task = await queue.enqueue("email", { to: 42 }, { maxAttempts: 5 });
      const w = worker(db, { handlerRegistry: registry });
      assert.equal(await w.claimAndProcess(), true);
      const failed = await queue.get(task.id);
      assert.equal(failed?.status, "failed");
      assert.equal(failed?.attempts, 1);
      assert.match(failed?.errorMessage ?? "", /Invalid payload for task type 'email': to: /);
      assert.equal(called, false);
    });
  });

  test("a defineHandler handler receives the payload as its schema parsed it", async () => {
    await withDb(async (db) => {
      const registry = new TaskHandlerRegistry();
      const seen: unknown[] = [];
      registry.registerHandler(defineHandler({
        type: "greet",
        schema: v.object({ name: v.pipe(v.string(), v.trim()), times: v.optional(v.number(), 3) }),
        handle: (task) => void seen.push(task.payload),
      }));
      await new Queue(db).enqueue("greet", { name: "  Ada  " });
      assert.equal(await worker(db, { handlerRegistry: registry }).claimAndProcess(), true);
      assert.deepEqual(seen, [{ name: "Ada", times: 3 }]);
    });
  });
});

describe("routing tasks to handlers", () => {
  test("the registry routes by type, an explicit taskHandler wins over it, and either alone works", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const registry = new TaskHandlerRegistry();
      const seen: string[] = [];
      registry.registerHandler("a", (task) => void seen.push(`registry:${task.payload.n}`));
      const explicit: TaskHandler = (task) => void seen.push(`explicit:${task.payload.n}`);
      await queue.enqueueMany([
        { type: "a", payload: { n: 1 } },
        { type: "a", payload: { n: 2 } },
        { type: "unregistered", payload: { n: 3 } },
        { type: "a", payload: { n: 4 } },
        { type: "a", payload: { n: 5 } },
      ]);
      const both = worker(db, { handlerRegistry: registry, strategy: "fifo" });
      assert.equal(await both.claimAndProcess(), true);
      assert.equal(await both.claimAndProcess(explicit), true);
      assert.equal(await both.claimAndProcess(explicit), true); // no refusal: the explicit handler takes any type
      const summary = await both.runLoop({ taskHandler: explicit, maxIterations: 1 });
      assert.equal(summary.completed, 1);
      const explicitOnly = worker(db, { workerId: "w2", strategy: "fifo" });
      assert.equal(await explicitOnly.claimAndProcess(explicit), true);
      assert.deepEqual(seen, ["registry:1", "explicit:2", "explicit:3", "explicit:4", "explicit:5"]);
      assert.equal((await queue.stats()).counts.completed, 5);
    });
  });

  test("claimAndProcess returns false on an empty queue", async () => {
    await withDb(async (db) => {
      assert.equal(await worker(db).claimAndProcess(() => {}), false);
    });
  });

  test("without a registry or a taskHandler, claimAndProcess and runLoop throw a TypeError and claim nothing", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const task = await queue.enqueue("a");
      const w = worker(db);
      await assert.rejects(async () => await w.claimAndProcess(), TypeError);
      await assert.rejects(async () => await w.runLoop({ untilEmpty: true }), TypeError);
      const after = await queue.get(task.id);
      assert.equal(after?.status, "queued");
      assert.equal(after?.attempts, 0);
    });
  });

  test("plain and async handlers both work; a synchronous throw and a rejection both fail the attempt", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("sync_ok", () => "done");
      registry.registerHandler("async_ok", async () => {
        await delay(1);
        return "done";
      });
      registry.registerHandler("sync_throw", () => {
        throw new Error("sync boom");
      });
      registry.registerHandler("async_reject", async () => {
        await delay(1);
        throw new Error("async boom");
      });
      const tasks = await queue.enqueueMany(
        ["sync_ok", "async_ok", "sync_throw", "async_reject"].map((type) => ({ type, maxAttempts: 2 })),
      );
      const summary = await worker(db, { handlerRegistry: registry }).runLoop({ maxIterations: 4 });
      assert.equal(summary.completed, 2);
      assert.equal(summary.retried, 2);
      const [syncOk, asyncOk, syncThrow, asyncReject] = await Promise.all(tasks.map((t) => queue.get(t.id)));
      assert.equal(syncOk?.status, "completed");
      assert.equal(asyncOk?.status, "completed");
      assert.equal(syncThrow?.status, "queued");
      assert.equal(syncThrow?.errorMessage, "sync boom");
      assert.equal(asyncReject?.status, "queued");
      assert.equal(asyncReject?.errorMessage, "async boom");
    });
  });
});

describe("concurrency and the run loop", () => {
  test("with concurrency 4, exactly four handlers run at once, and then every task completes", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      await queue.enqueueMany(Array.from({ length: 10 }, (_, i) => ({ type: "t", payload: { i } })));
      const gate = deferred();
      let inFlight = 0;
      let maxInFlight = 0;
      const w = worker(db, { concurrency: 4 });
      const loop = w.runLoop({
        untilEmpty: true,
        taskHandler: async () => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          try {
            await gate.promise;
          } finally {
            inFlight--;
          }
        },
      });
      try {
        await waitFor(() => inFlight === 4, 10_000, "four handlers in flight");
        await delay(30); // room for a fifth claim, were the limit broken
        assert.equal(inFlight, 4);
        assert.equal(w.runningCount, 4);
        const stats = await queue.stats();
        assert.equal(stats.counts.running, 4);
        assert.equal(stats.counts.queued, 6);
      } finally {
        gate.resolve();
      }
      const summary = await loop;
      assert.equal(maxInFlight, 4);
      assert.equal(summary.completed, 10);
      assert.equal((await queue.stats()).counts.completed, 10);
    });
  });

  test("runLoop({ maxIterations }) stops after that many claim attempts", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      await queue.enqueueMany(Array.from({ length: 5 }, () => ({ type: "t" })));
      const w = worker(db, { pollIntervalMs: 1 });
      const summary = await w.runLoop({ taskHandler: () => {}, maxIterations: 3 });
      assert.equal(summary.claimed, 3);
      assert.equal(summary.completed, 3);
      assert.equal(summary.retried + summary.failed + summary.leaseLost, 0);
      assert.equal((await queue.stats()).counts.queued, 2);
      // One claim attempt claims as many tasks as there are free slots.
      const wide = worker(db, { workerId: "w2", concurrency: 2 });
      assert.equal((await wide.runLoop({ taskHandler: () => {}, maxIterations: 1 })).completed, 2);
      assert.equal((await queue.stats()).counts.queued, 0);
      // Attempts that find nothing count too.
      const idle = await w.runLoop({ taskHandler: () => {}, maxIterations: 3 });
      assert.equal(idle.claimed, 0);
    });
  });

  test("aborting runLoop's signal stops claiming, and the running handler finishes and is recorded", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const [first, second, third] = await queue.enqueueMany([{ type: "t" }, { type: "t" }, { type: "t" }]);
      const started = deferred();
      const gate = deferred();
      const w = worker(db, { strategy: "fifo" });
      const controller = new AbortController();
      const loop = w.runLoop({
        signal: controller.signal,
        taskHandler: async () => {
          started.resolve();
          await gate.promise;
        },
      });
      let settled = false;
      void loop.then(() => (settled = true), () => (settled = true));
      try {
        await started.promise;
        controller.abort();
        await delay(20);
        assert.equal(settled, false, "the loop waits for its running handler");
      } finally {
        gate.resolve();
      }
      const summary = await loop;
      assert.equal(summary.claimed, 1);
      assert.equal(summary.completed, 1);
      assert.equal(await statusOf(queue, first.id), "completed");
      assert.equal(await statusOf(queue, second.id), "queued");
      assert.equal(await statusOf(queue, third.id), "queued");

      const aborted = await w.runLoop({ signal: AbortSignal.abort(), taskHandler: () => {} });
      assert.equal(aborted.claimed, 0);
      assert.equal((await queue.stats()).counts.queued, 2);
    });
  });

  test("stop() waits for running handlers to finish and records them", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const task = await queue.enqueue("t");
      const started = deferred();
      const gate = deferred();
      const w = worker(db);
      const loop = w.runLoop({
        taskHandler: async () => {
          started.resolve();
          await gate.promise;
        },
      });
      let stopped = false;
      try {
        await started.promise;
        const stopping = w.stop().then(() => (stopped = true));
        await delay(20);
        assert.equal(stopped, false, "stop() waits for the handler");
        assert.equal(await statusOf(queue, task.id), "running");
        gate.resolve();
        await stopping;
      } finally {
        gate.resolve();
        await w.stop();
      }
      assert.equal(stopped, true);
      assert.equal((await loop).completed, 1);
      assert.equal(await statusOf(queue, task.id), "completed");
    });
  });

  test("stop({ graceMs }) aborts a handler that does not finish and hands its task back without counting the attempt", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const task = await queue.enqueue("t", {}, { maxAttempts: 3 });
      const started = deferred<AbortSignal>();
      const events: WorkerEvent[] = [];
      const w = worker(db, { onEvent: (e) => events.push(e) });
      const loop = w.runLoop({
        taskHandler: (_task, ctx) => {
          started.resolve(ctx.signal);
          return forever();
        },
      });
      const signal = await started.promise;
      const before = Date.now();
      await w.stop({ graceMs: 50 });
      assert.ok(Date.now() - before >= 45, "the grace period was given");
      assert.equal(signal.aborted, true);
      assert.ok(signal.reason instanceof LeaseLostError);
      assert.equal(signal.reason.why, "released");
      assert.equal(signal.reason.taskId, task.id);
      const released = await queue.get(task.id);
      assert.equal(released?.status, "queued");
      assert.equal(released?.attempts, 0);
      assert.equal(released?.leaseUntil, null);
      assert.ok(events.some((e) => e.type === "released" && e.task.id === task.id));
      assert.ok(!events.some((e) => e.type === "completed" || e.type === "retrying" || e.type === "failed"));
      await loop;

      // The next claim is a first attempt again.
      let attempt = 0;
      assert.equal(
        await worker(db, { workerId: "w2" }).claimAndProcess((_t, ctx) => void (attempt = ctx.attempt)),
        true,
      );
      assert.equal(attempt, 1);
      assert.equal(await statusOf(queue, task.id), "completed");
    });
  });
});

describe("timeouts", () => {
  test("a task's timeoutMs aborts its handler's signal with a TaskTimeoutError and the attempt is retried", async () => {
    await withDb(async (db) => {
      const clock = new ManualClock(Date.now());
      const queue = new Queue(db, { clock });
      const task = await queue.enqueue("slow", {}, { timeoutMs: 50, maxAttempts: 2 });
      const signals: AbortSignal[] = [];
      const handler: TaskHandler = (_task, ctx) => {
        signals.push(ctx.signal);
        return ctx.attempt === 1 ? forever() : "quick this time";
      };
      const w = worker(db, { clock, random: () => 0.5 });
      assert.equal(await w.claimAndProcess(handler), true);
      const reason = signals[0].reason;
      assert.ok(reason instanceof TaskTimeoutError);
      assert.equal(reason.timeoutMs, 50);
      const retried = await queue.get(task.id);
      assert.equal(retried?.status, "queued");
      assert.equal(retried?.attempts, 1);
      assert.equal(retried?.errorMessage, `TaskTimeoutError: Task ${task.id} timed out after 50 ms.`);
      assert.equal(retried?.runAfter, clock.now() + 1000);
      clock.advance(1000);
      assert.equal(await w.claimAndProcess(handler), true);
      assert.equal(await statusOf(queue, task.id), "completed");
      assert.equal(signals[1].aborted, false);
    });
  });

  test("a handler's own timeoutMs from defineHandler applies to tasks that set none", async () => {
    await withDb(async (db) => {
      const registry = new TaskHandlerRegistry();
      const signals: AbortSignal[] = [];
      registry.registerHandler(defineHandler({
        type: "slow",
        schema: v.unknown(),
        timeoutMs: 30,
        handle: (_task, ctx) => {
          signals.push(ctx.signal);
          return forever();
        },
      }));
      const queue = new Queue(db, { registry });
      const task = await queue.enqueue("slow", {}, { maxAttempts: 1 });
      assert.equal(await worker(db, { handlerRegistry: registry }).claimAndProcess(), true);
      assert.ok(signals[0].reason instanceof TaskTimeoutError);
      const failed = await queue.get(task.id);
      assert.equal(failed?.status, "failed");
      assert.match(failed?.errorMessage ?? "", /timed out after 30 ms/);
    });
  });

  test("a task's own timeoutMs overrides its handler's", async () => {
    await withDb(async (db) => {
      const registry = new TaskHandlerRegistry();
      registry.registerHandler(defineHandler({
        type: "slow",
        schema: v.unknown(),
        timeoutMs: 20,
        handle: () => delay(150),
      }));
      const queue = new Queue(db, { registry });
      const task = await queue.enqueue("slow", {}, { timeoutMs: 10_000, maxAttempts: 1 });
      assert.equal(await worker(db, { handlerRegistry: registry }).claimAndProcess(), true);
      assert.equal(await statusOf(queue, task.id), "completed");
    });
  });
});

describe("cancelling a running task", () => {
  test("aborts the handler's signal within a heartbeat, and the task ends 'cancelled', not 'completed'", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const task = await queue.enqueue("long");
      const started = deferred<AbortSignal>();
      const events: WorkerEvent[] = [];
      const w = worker(db, { heartbeatIntervalMs: 20, leaseMs: 1000, onEvent: (e) => events.push(e) });
      const processing = w.claimAndProcess(async (_task, ctx) => {
        started.resolve(ctx.signal);
        await untilAborted(ctx.signal);
        return "finished anyway"; // discarded: the task was cancelled
      });
      const signal = await started.promise;
      await queue.cancel(task.id);
      // The heartbeat (every 20 ms) is what learns of the cancellation; the handler waits for nothing else.
      // The bound is a hang guard for a loaded machine, not how soon a heartbeat comes.
      await waitFor(() => signal.aborted, 30_000, "the handler's signal to abort");
      assert.ok(signal.reason instanceof LeaseLostError);
      assert.equal(signal.reason.why, "cancelled");
      assert.equal(await processing, true);
      const after = await queue.get(task.id);
      assert.equal(after?.status, "cancelled");
      assert.ok(after?.finishedAt);
      assert.deepEqual(events.filter((e) => e.type === "cancelled").map((e) => e.task.id), [task.id]);
      assert.ok(!events.some((e) => e.type === "lease-lost"), "a cancelled task is not a lost lease");
      assert.ok(!events.some((e) => e.type === "completed"));
    });
  });
});

describe("changing the registry while a loop runs", () => {
  test("a handler registered while the loop runs is used from the next claim on", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const registry = new TaskHandlerRegistry();
      const seen: string[] = [];
      registry.registerHandler("a", (task) => void seen.push(`v1:${task.payload.n}`));
      const w = worker(db, { handlerRegistry: registry, pollIntervalMs: 5 });
      const loop = w.runLoop();
      try {
        const first = await queue.enqueue("a", { n: 1 });
        await waitFor(async () => (await statusOf(queue, first.id)) === "completed");
        registry.registerHandler("a", (task) => void seen.push(`v2:${task.payload.n}`), {
          allowOverride: true,
        });
        const second = await queue.enqueue("a", { n: 2 });
        await waitFor(async () => (await statusOf(queue, second.id)) === "completed");
        registry.registerHandler("c", (task) => void seen.push(`c:${task.payload.n}`));
        const third = await queue.enqueue("c", { n: 3 });
        await waitFor(async () => (await statusOf(queue, third.id)) === "completed");
        assert.deepEqual(seen, ["v1:1", "v2:2", "c:3"]);
      } finally {
        await w.stop();
      }
      assert.equal((await loop).completed, 3);
    });
  });

  test("unregistering a type while its handler runs does not disturb that run; the next task of it fails", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("a", () => {});
      const started = deferred();
      const gate = deferred();
      registry.registerHandler("b", async () => {
        started.resolve();
        await gate.promise;
      });
      const w = worker(db, { handlerRegistry: registry, pollIntervalMs: 5 });
      const loop = w.runLoop();
      try {
        const running = await queue.enqueue("b");
        await started.promise;
        assert.equal(registry.unregisterHandler("b"), true);
        gate.resolve();
        await waitFor(async () => (await statusOf(queue, running.id)) === "completed");
        const next = await queue.enqueue("b");
        await waitFor(async () => (await statusOf(queue, next.id)) === "failed");
        assert.equal(
          (await queue.get(next.id))?.errorMessage,
          "No handler registered for task type 'b'. Registered types: ['a']",
        );
      } finally {
        gate.resolve();
        await w.stop();
      }
      const summary = await loop;
      assert.equal(summary.completed, 1);
      assert.equal(summary.failed, 1);
    });
  });
});

describe("what a worker records", () => {
  test("ctx.log lines appear in queue.logs(id), oldest first", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const task = await queue.enqueue("t");
      const other = await queue.enqueue("t");
      const w = worker(db, { clock, strategy: "fifo" });
      assert.equal(
        await w.claimAndProcess(async (_task, ctx) => {
          await ctx.log("info", "starting", { step: 1, tags: ["x"] });
          clock.advance(5);
          await ctx.log("warn", "careful");
        }),
        true,
      );
      assert.equal(await w.claimAndProcess(async (_task, ctx) => await ctx.log("error", "other task")), true);
      const logs = await queue.logs(task.id);
      assert.deepEqual(
        logs.map(({ taskId, at, level, message, details }) => ({ taskId, at, level, message, details })),
        [
          { taskId: task.id, at: T0, level: "info", message: "starting", details: { step: 1, tags: ["x"] } },
          { taskId: task.id, at: T0 + 5, level: "warn", message: "careful", details: undefined },
        ],
      );
      assert.ok(logs[0].id < logs[1].id);
      assert.deepEqual((await queue.logs(other.id)).map((l) => l.message), ["other task"]);
    });
  });

  test("a handler's context holds what HandlerContext names, and nothing of the worker's or the store's own", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const task = await queue.enqueue("t");
      let seen: HandlerContext | undefined;
      assert.equal(
        await worker(db).claimAndProcess(async (_task, ctx) => {
          seen = ctx;
          await new Queue(ctx.db).enqueue("follow-up", { after: task.id });
        }),
        true,
      );
      assert.ok(seen);
      assert.deepEqual(Object.keys(seen).sort(), [
        "attempt",
        "db",
        "heartbeat",
        "log",
        "progress",
        "signal",
        "workerId",
      ]);
      assert.equal(seen.db, db);
      // ctx.db is the database, which exposes no store of its own either.
      assert.equal((seen.db as unknown as Record<string, unknown>).store, undefined);
      for (const value of Object.values(seen.db)) {
        assert.notEqual(value, storeOf(db), "ctx.db holds the store");
      }
      for (const key of Object.keys(seen)) {
        assert.notEqual(
          (seen as unknown as Record<string, unknown>)[key],
          storeOf(db),
          `ctx.${key} is the store`,
        );
      }
      assert.deepEqual((await queue.list({ type: "follow-up" })).map((t) => t.payload), [{ after: task.id }]);
    });
  });

  test("a running loop has a row in the workers table, which is gone once the loop ends", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const registry = new TaskHandlerRegistry();
      registry.registerHandler("b", () => {});
      registry.registerHandler("a", () => {});
      const w = worker(db, { handlerRegistry: registry, host: "host-1", pid: 4242, concurrency: 2 });
      assert.deepEqual(await queue.workers(), []);
      const before = Date.now();
      const loop = w.runLoop();
      try {
        await waitFor(async () => (await queue.workers()).length === 1, 10_000, "the worker's row");
        const [row] = await queue.workers();
        assert.equal(row.id, "w1");
        assert.equal(row.host, "host-1");
        assert.equal(row.pid, 4242);
        assert.equal(row.concurrency, 2);
        assert.deepEqual(row.handlerTypes, ["a", "b"]);
        assert.ok(Number.isInteger(row.startedAt) && row.startedAt >= before);
        assert.ok(Number.isInteger(row.heartbeatAt) && row.heartbeatAt >= row.startedAt);
      } finally {
        await w.stop();
      }
      await loop;
      assert.deepEqual(await queue.workers(), []);
      // A loop that ends on its own removes its row too.
      await w.runLoop({ untilEmpty: true });
      assert.deepEqual(await queue.workers(), []);
    });
  });

  test("onEvent reports claimed, completed, retrying and failed, and a throwing listener is ignored", async () => {
    await withQueueAtT0(async ({ db, clock, queue }) => {
      const ok = await queue.enqueue("ok", {}, { maxAttempts: 2 });
      const flaky = await queue.enqueue("flaky", {}, { maxAttempts: 2 });
      const events: WorkerEvent[] = [];
      const w = worker(db, {
        clock,
        random: () => 0.5,
        strategy: "fifo",
        onEvent: (event) => {
          events.push(event);
          throw new Error("a broken listener");
        },
      });
      const handler: TaskHandler = (task) => {
        if (task.type === "flaky") throw new Error("boom");
      };
      assert.equal(await w.claimAndProcess(handler), true);
      assert.equal(await w.claimAndProcess(handler), true);
      clock.advance(1000);
      assert.equal(await w.claimAndProcess(handler), true);
      const summary = events.map((e) => {
        if (e.type === "error") return { type: e.type };
        const base = { type: e.type, id: e.task.id };
        if (e.type === "retrying") return { ...base, error: e.error, runAfter: e.runAfter };
        if (e.type === "failed") return { ...base, error: e.error };
        return base;
      });
      assert.deepEqual(summary, [
        { type: "claimed", id: ok.id },
        { type: "completed", id: ok.id },
        { type: "claimed", id: flaky.id },
        { type: "retrying", id: flaky.id, error: "boom", runAfter: T0 + 1000 },
        { type: "claimed", id: flaky.id },
        { type: "failed", id: flaky.id, error: "boom" },
      ]);
      for (const event of events) {
        if ("durationMs" in event) assert.equal(event.durationMs, 0);
      }
      assert.equal(await statusOf(queue, ok.id), "completed");
      assert.equal(await statusOf(queue, flaky.id), "failed");
    });
  });
});
