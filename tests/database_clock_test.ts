/**
 * DatabaseClock on a manual clock and a scripted server: the offset, taken at the middle of the shorter of
 * two round trips, measured again once a minute of elapsed time has passed, and kept when a measurement
 * fails.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../mod.ts";
import { DatabaseClock } from "../src/database_clock.ts";

test("the offset is the server's reading against the middle of the round trip", async () => {
  const local = new ManualClock(1_000_000);
  // The server answers 200 ms after the question, reading 1_500_100 at the middle of the trip.
  const clock = new DatabaseClock(local, () => {
    local.advance(100);
    const reading = 1_500_100;
    local.advance(100);
    return Promise.resolve(reading);
  });
  assert.equal(clock.synced, false);
  await clock.sync();
  assert.equal(clock.synced, true);
  assert.equal(clock.offsetMs, 500_000);
  assert.equal(clock.now(), local.now() + 500_000);
  assert.equal(clock.elapsed(), local.elapsed());
});

test("of a measurement's two round trips, the shorter one's middle counts: the first may open a connection", async () => {
  const local = new ManualClock(1_000_000);
  // The first answer comes 9 ms late, after a connection was opened: 5 ms before the question was sent,
  // then 2 ms each way. Its middle would put the server 3.5 ms ahead; the second trip is 1 ms each way.
  const trips = [
    () => {
      local.advance(7);
      const reading = local.now();
      local.advance(2);
      return reading;
    },
    () => {
      local.advance(1);
      const reading = local.now();
      local.advance(1);
      return reading;
    },
  ];
  let asked = 0;
  const clock = new DatabaseClock(local, () => Promise.resolve(trips[asked++]!()));
  await clock.sync();
  assert.equal(asked, 2);
  assert.equal(clock.offsetMs, 0);
});

test("readings measure again after a minute of elapsed time; a failed measurement keeps the last offset and is retried 5 s later", async () => {
  const local = new ManualClock(0);
  const answers: (() => Promise<number>)[] = [
    () => Promise.resolve(local.now() + 1_000),
    () => Promise.resolve(local.now() + 1_000),
    () => Promise.reject(new Error("server gone")),
    () => Promise.resolve(local.now() - 2_000),
    () => Promise.resolve(local.now() - 2_000),
  ];
  let asked = 0;
  const clock = new DatabaseClock(local, () => answers[asked++]!());
  await clock.sync();
  assert.equal(clock.offsetMs, 1_000);
  clock.now();
  assert.equal(asked, 2, "no measurement within the minute");
  local.advance(60_000);
  clock.now(); // starts the second measurement, which fails
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(asked, 3);
  assert.equal(clock.offsetMs, 1_000);
  clock.now(); // within 5 s of the failed one: no new query
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(asked, 3);
  local.advance(5_000);
  clock.now(); // still due, and the retry wait is over
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(asked, 5);
  assert.equal(clock.offsetMs, -2_000);
});

test("measurements asked for together share one measurement", async () => {
  const local = new ManualClock(0);
  let asked = 0;
  const clock = new DatabaseClock(local, () => (asked++, Promise.resolve(42)));
  await Promise.all([clock.sync(), clock.sync(), clock.sync()]);
  assert.equal(asked, 2, "one measurement: its two round trips");
  assert.equal(clock.offsetMs, 42);
});
