/**
 * The completer's grouped writes: outcomes queued while the loop is on its way to a claim wait for that
 * claim, which records them in its own transaction; without a claim coming they are written by themselves.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../src/clock.ts";
import type { Progress, Recorded } from "../src/store/store.ts";
import { Completer } from "../src/worker/completer.ts";

/** A store whose grouped writes are counted, every fence holding. */
function countingStore() {
  const writes: Progress[] = [];
  return {
    writes,
    taskRecord(progress: Progress): Promise<Recorded> {
      writes.push(progress);
      return Promise.resolve({
        started: new Set(progress.starts.map((start) => start.id)),
        finished: new Set(progress.finishes.map((finish) => finish.id)),
      });
    },
  };
}

/** The ids of each write's outcomes. */
const written = (store: { writes: Progress[] }) =>
  store.writes.map((write) => write.finishes.map((f) => f.id));
const completed = (id: number) => ({ id, leaseToken: `t${id}`, status: "completed" as const });
const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

test("an outcome is written by itself when no claim is coming", async () => {
  const store = countingStore();
  const completer = new Completer(store, systemClock);
  assert.equal(await completer.finish(completed(1)), true);
  assert.deepEqual(written(store), [[1]]);
});

test("outcomes queued while a claim is coming wait for it, and the claim takes them into its write", async () => {
  const store = countingStore();
  const completer = new Completer(store, systemClock);
  const claimMade = completer.holdForClaim();
  const held = [completer.finish(completed(1)), completer.finish(completed(2))];
  await turns(5);
  assert.deepEqual(written(store), [], "nothing written while the claim is coming");
  // The claim takes them, and tells their waiters what its transaction recorded.
  const taken = completer.take();
  assert.deepEqual(taken.progress.finishes.map((finish) => finish.id), [1, 2]);
  taken.settle({ started: new Set(), finished: new Set([1, 2]) });
  claimMade();
  assert.deepEqual(await Promise.all(held), [true, true]);
  await completer.flushing;
  assert.deepEqual(written(store), [], "no write of their own");
});

test("outcomes that wait for a claim not made after all are written once the loop gives it up", async () => {
  const store = countingStore();
  const completer = new Completer(store, systemClock);
  const claimMade = completer.holdForClaim();
  const held = completer.finish(completed(3));
  await turns(5);
  assert.deepEqual(written(store), []);
  claimMade();
  assert.equal(await held, true);
  assert.deepEqual(written(store), [[3]]);
});

const start = (id: number) => ({ id, leaseToken: `t${id}`, at: 1 });
const startsOf = (store: { writes: Progress[] }) =>
  store.writes.map((write) => write.starts.map((s) => s.id));

test("a start nobody waits for calls for no write of its own: it rides with the next outcome", async () => {
  const store = countingStore();
  const completer = new Completer(store, systemClock);
  completer.start(start(1));
  completer.start(start(2));
  await turns(5);
  assert.deepEqual(store.writes, [], "no write for the starts alone");
  assert.equal(await completer.finish(completed(3)), true);
  assert.deepEqual(startsOf(store), [[1, 2]]);
  assert.deepEqual(written(store), [[3]], "one write held the starts and the outcome");
});

test("a start whose task finishes before it is written goes with the outcome, which counts the attempt", async () => {
  const store = countingStore();
  const completer = new Completer(store, systemClock);
  completer.start(start(1));
  completer.start(start(2));
  const waited = completer.startAndWait(start(3));
  const held = [completer.finish(completed(1)), completer.finish(completed(3))];
  assert.deepEqual(await Promise.all([waited, ...held]), [true, true, true]);
  // Task 1's start leaves the write (its outcome counts the attempt); task 3's stays, as its waiter asks.
  assert.deepEqual(startsOf(store), [[2, 3]]);
  assert.deepEqual(written(store), [[1, 3]]);
});

test("a start nothing else comes to take is written by itself in the end", async () => {
  const store = countingStore();
  const completer = new Completer(store, systemClock);
  completer.start(start(4));
  const deadline = Date.now() + 60_000;
  while (store.writes.length === 0) {
    assert.ok(Date.now() < deadline, "the start was never written");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await completer.flushing;
  assert.deepEqual(startsOf(store), [[4]]);
});

test("writeDeferred writes the waiting starts at once, as a stopping worker asks", async () => {
  const store = countingStore();
  const completer = new Completer(store, systemClock);
  completer.start(start(5));
  completer.writeDeferred();
  await completer.flushing;
  assert.deepEqual(startsOf(store), [[5]]);
  // Nothing is left to fire later.
  completer.writeDeferred();
  assert.equal(completer.flushing, null);
});

test("a start someone waits for (a task that killed its worker before) is written at once", async () => {
  const store = countingStore();
  const completer = new Completer(store, systemClock);
  assert.equal(await completer.startAndWait(start(6)), true);
  assert.deepEqual(startsOf(store), [[6]]);
});
