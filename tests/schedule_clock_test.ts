/**
 * Schedules on a server shared by hosts whose clocks disagree: a worker fires on its clock corrected to the
 * server's, never on its host's. A worker 5 minutes fast used to fire its first pass before the correction,
 * writing a schedule's first sighting and a slot 5 minutes ahead (no slot then fired for 5 minutes, and the
 * slots skipped over never fired at all).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { defineSchedule, QueueDatabase, TaskHandlerRegistry, WorkerEngine } from "../mod.ts";
import { storeOf } from "../src/store/store_of.ts";
import { waitFor } from "./_helpers.ts";
import { freshSchema, postgresUnavailable } from "./_postgres.ts";

const skip = postgresUnavailable();
/** More than any correction error or the time between two reads here; far less than the skew. */
const SLACK_MS = 5_000;
const SKEW_MS = 300_000;

/** Runs a worker whose host clock is `offsetMs` off until `done(tasks)` holds, then stops it. */
async function runWorker(url: string, workerId: string, offsetMs: number, firedAtLeast: number) {
  const db = new QueueDatabase(url);
  try {
    await db.initializeSchema();
    const registry = new TaskHandlerRegistry();
    // The tasks are left queued: the worker serves no type, so that the fired slots can be read back.
    registry.registerHandler("other", () => {});
    registry.registerHandler("tick", () => {});
    registry.registerSchedule(defineSchedule({ name: "every_second", type: "tick", cron: "* * * * * *" }));
    const clock = { now: () => Date.now() + offsetMs, elapsed: () => performance.now() };
    const worker = new WorkerEngine({ db, workerId, handlerRegistry: registry, clock, types: ["other"] });
    const stop = new AbortController();
    const loop = worker.runLoop({ signal: stop.signal });
    const fired = async () => (await storeOf(db).taskList({ type: "tick", limit: 10_000, offset: 0 })).length;
    try {
      await waitFor(async () => await fired() >= firedAtLeast, 30_000, `${firedAtLeast} slots fired`);
    } finally {
      stop.abort();
      await loop;
    }
    const [state] = await storeOf(db).scheduleList();
    const tasks = await storeOf(db).taskList({ type: "tick", limit: 10_000, offset: 0 });
    return { state: state!, slots: tasks.map((task) => task.runAfter) };
  } finally {
    await db.close();
  }
}

test("a worker whose host clock is 5 minutes fast fires a new schedule's slots on the server's time", {
  skip,
}, async () => {
  const { url, drop } = await freshSchema();
  try {
    const { state, slots } = await runWorker(url, "fast", SKEW_MS, 1);
    const now = Date.now();
    assert.ok(state.since <= now + SLACK_MS, `first seen ${(state.since - now) / 1000} s in the future`);
    for (const slot of slots) assert.ok(slot <= now + SLACK_MS, `a slot ${(slot - now) / 1000} s ahead`);
  } finally {
    await drop();
  }
});

test(
  "a worker 5 minutes fast that takes a schedule over fires no slot ahead of the server's time",
  { skip },
  async () => {
    const { url, drop } = await freshSchema();
    try {
      await runWorker(url, "true", 0, 1);
      const { state, slots } = await runWorker(url, "fast", SKEW_MS, 2);
      const now = Date.now();
      assert.ok(state.lastSlot! <= now + SLACK_MS, `last slot ${(state.lastSlot! - now) / 1000} s ahead`);
      for (const slot of slots) assert.ok(slot <= now + SLACK_MS, `a slot ${(slot - now) / 1000} s ahead`);
    } finally {
      await drop();
    }
  },
);
