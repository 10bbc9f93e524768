/**
 * Hosts whose clocks disagree by minutes, sharing one database server: every process corrects its clock to
 * the server's, so a host 5 minutes fast neither runs tasks early nor takes a live worker's leases, and one
 * 5 minutes slow neither leaves runnable tasks waiting nor holds leases that look expired to the others.
 * The server is the loopback stand-in of tests/fixtures/libsql_http_server.ts, whose clock is this machine's.
 *
 * @module
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Clock,
  Queue,
  QueueDatabase,
  type QueueDatabaseOptions,
  TaskHandlerRegistry,
  WorkerEngine,
  type WorkerEngineOptions,
} from "../mod.ts";
import { startLibsqlServer } from "./fixtures/libsql_http_server.ts";
import { deferred, makeTempDir, waitFor } from "./_helpers.ts";

const MINUTES_5 = 5 * 60_000;

/** This machine's clock, off by `skewMs`, as another host's might be. */
function skewedClock(skewMs: number): Clock {
  return { now: () => Date.now() + skewMs, elapsed: () => performance.now() };
}

describe("hosts with skewed clocks on one database server", () => {
  let folder: { dir: string; remove: () => void };
  let server: Awaited<ReturnType<typeof startLibsqlServer>>;
  const handles: QueueDatabase[] = [];

  before(async () => {
    folder = makeTempDir();
    server = await startLibsqlServer(join(folder.dir, "server.db"));
    await open().initializeSchema();
  });
  after(async () => {
    for (const db of handles) await db.close();
    await server?.close();
    folder?.remove();
  });

  function open(options: QueueDatabaseOptions = {}): QueueDatabase {
    const db = new QueueDatabase(server.url, options);
    handles.push(db);
    return db;
  }

  /** A producer on its own handle whose host clock is off by `skewMs`. */
  function producer(skewMs: number, options: QueueDatabaseOptions = {}): Queue {
    return new Queue(open(options), { clock: skewedClock(skewMs) });
  }

  /** A worker on its own handle whose host clock is off by `skewMs`, reaping any lease it sees expired. */
  function worker(
    id: string,
    skewMs: number,
    registry: TaskHandlerRegistry,
    extra: Partial<WorkerEngineOptions> = {},
  ): WorkerEngine {
    return new WorkerEngine({
      db: open(),
      workerId: id,
      handlerRegistry: registry,
      clock: skewedClock(skewMs),
      leaseMs: 30_000,
      reapGraceMs: 0,
      pollIntervalMs: 5,
      ...extra,
    });
  }

  /** A registry whose handlers record the task ids they ran. */
  function recording(...types: string[]): { registry: TaskHandlerRegistry; ran: number[] } {
    const registry = new TaskHandlerRegistry();
    const ran: number[] = [];
    for (const type of types) registry.registerHandler(type, (task) => void ran.push(task.id));
    return { registry, ran };
  }

  /**
   * Runs `engine` until it has run a task, well before the five minutes a clock left uncorrected would
   * make it wait. Not one claim alone: two corrected clocks may disagree by a few milliseconds of their
   * round trips, so a task due "now" by one may be due a moment later by the other.
   */
  async function runsSoon(engine: WorkerEngine, ran: number[]): Promise<void> {
    const loop = engine.runLoop();
    try {
      // 15 s: far past a loaded machine's delays, and far short of the 5 minutes an uncorrected clock adds.
      await waitFor(
        () => ran.length > 0,
        15_000,
        "the worker to run the task, due now by the server's clock",
      );
    } finally {
      await engine.stop();
    }
    assert.equal((await loop).completed, 1);
  }

  test("a corrected clock reads the server's time, whichever way the host is off", async () => {
    const db = open();
    for (const skew of [MINUTES_5, -MINUTES_5]) {
      const clock = db.clockFor(skewedClock(skew));
      await db.syncClock(clock);
      // Within a minute: the round trip to a loopback server takes milliseconds, however busy the machine.
      assert.ok(Math.abs(clock.now() - Date.now()) < 60_000, `off by ${clock.now() - Date.now()} ms`);
    }
    const local = skewedClock(MINUTES_5);
    assert.equal((open({ timeSource: "local" })).clockFor(local), local);
  });

  test("a host 5 minutes fast does not run a task due in a minute", async () => {
    const queue = producer(0);
    const task = await queue.enqueue("fast_due_later", {}, { delayMs: 60_000 });
    const { registry, ran } = recording("fast_due_later");
    const fast = worker("fast", MINUTES_5, registry, { types: ["fast_due_later"] });
    const summary = await fast.runLoop({ maxIterations: 3 });
    assert.equal(summary.claimed, 0);
    assert.deepEqual(ran, []);
    assert.equal((await queue.get(task.id))!.status, "queued");
  });

  test("a producer 5 minutes slow does not make a task due in a minute runnable now", async () => {
    const slowQueue = producer(-MINUTES_5);
    const task = await slowQueue.enqueue("slow_producer", {}, { delayMs: 60_000 });
    const { registry, ran } = recording("slow_producer");
    const onTime = worker("on-time-1", 0, registry, { types: ["slow_producer"] });
    assert.equal((await onTime.runLoop({ maxIterations: 3 })).claimed, 0);
    assert.deepEqual(ran, []);
    assert.equal((await slowQueue.get(task.id))!.status, "queued");
  });

  test("a task a producer 5 minutes fast enqueues for now is runnable now", async () => {
    const fastQueue = producer(MINUTES_5);
    const task = await fastQueue.enqueue("fast_producer", {});
    const { registry, ran } = recording("fast_producer");
    const onTime = worker("on-time-2", 0, registry, { types: ["fast_producer"] });
    await runsSoon(onTime, ran);
    assert.deepEqual(ran, [task.id]);
  });

  test("a host 5 minutes slow runs what is due now", async () => {
    const queue = producer(0);
    const task = await queue.enqueue("slow_worker", {});
    const { registry, ran } = recording("slow_worker");
    const slow = worker("slow", -MINUTES_5, registry, { types: ["slow_worker"] });
    await runsSoon(slow, ran);
    assert.deepEqual(ran, [task.id]);
  });

  for (
    const [holder, holderSkew, taker, takerSkew] of [
      ["on-time", 0, "fast", MINUTES_5],
      ["slow", -MINUTES_5, "on-time", 0],
    ] as const
  ) {
    test(`a live lease of the ${holder} worker is not taken by the ${taker} worker`, async () => {
      const type = `lease_${holder}_${taker}`.replace("-", "_");
      const queue = producer(0);
      const task = await queue.enqueue(type, {});
      const release = deferred();
      const holding = new TaskHandlerRegistry();
      holding.registerHandler(type, () => release.promise);
      const holderWorker = worker(`${holder}-holder`, holderSkew, holding, { types: [type] });
      const holderLoop = holderWorker.runLoop({ maxIterations: 1 });
      try {
        await waitFor(async () => (await queue.get(task.id))!.status === "running", 30_000, "the claim");
        const { registry, ran } = recording(type);
        const takerWorker = worker(`${taker}-taker`, takerSkew, registry, { types: [type] });
        // Its first round reaps every lease it sees expired (no grace), then claims.
        const summary = await takerWorker.runLoop({ maxIterations: 3 });
        assert.equal(summary.claimed, 0);
        assert.deepEqual(ran, []);
        const held = (await queue.get(task.id))!;
        assert.equal(held.status, "running");
        assert.equal(held.lockedBy, `${holder}-holder`);
        assert.equal(held.attempts, 1);
      } finally {
        release.resolve();
      }
      const summary = await holderLoop;
      assert.deepEqual([summary.completed, summary.leaseLost], [1, 0]);
    });
  }
});
