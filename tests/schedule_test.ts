/**
 * Schedules: defineSchedule's checks, slot arithmetic in time zones and across daylight-saving transitions,
 * the missed-slot policies, registration beside handlers, and the worker's scheduler firing each slot once.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import {
  defineHandler,
  defineSchedule,
  isInvalidArgument,
  ManualClock,
  PayloadValidationError,
  QueueDatabase,
  TaskHandlerRegistry,
  WorkerEngine,
} from "../mod.ts";
import { dueSlots, latestSlot, slotAfter, slotsBetween } from "../src/schedule_slots.ts";
import { storeOf } from "../src/store/store_of.ts";
import { Leadership } from "../src/worker/leader.ts";
import { Scheduler } from "../src/worker/scheduler.ts";

const iso = (ms: number | null) => ms === null ? null : new Date(ms).toISOString();
const at = (text: string) => Date.parse(text);
const SECOND = 1000;

function daily(fields: Partial<Parameters<typeof defineSchedule>[0]> = {}) {
  return defineSchedule({
    name: "daily",
    type: "report",
    cron: "30 2 * * *",
    timeZone: "Europe/Berlin",
    ...fields,
  });
}

// ---- defineSchedule ----

test("defineSchedule refuses bad input, naming what is wrong and how to fix it", () => {
  const cases: [Parameters<typeof defineSchedule>[0], RegExp][] = [
    [{ name: "", type: "report", cron: "* * * * *" }, /name must be 1 to 200 letters/],
    [{ name: "has space", type: "report", cron: "* * * * *" }, /name must be/],
    [{ name: "a", type: " ", cron: "* * * * *" }, /Schedule 'a': Task type cannot be empty/],
    [
      { name: "a", type: "report", cron: "61 * * * *" },
      /Schedule 'a': invalid cron expression "61 \* \* \* \*".*minute.*Write 5 fields/,
    ],
    [{ name: "a", type: "report", cron: "* * *" }, /invalid cron expression/],
    [{ name: "a", type: "report", cron: "0 0 30 2 *" }, /never fires/],
    [
      { name: "a", type: "report", cron: "* * * * *", timeZone: "Mars/Olympus" },
      /unknown time zone "Mars\/Olympus"\. Use an IANA name/,
    ],
    [
      { name: "a", type: "report", cron: "* * * * *", missed: "some" as "all" },
      /missed must be one of "latest", "skip", "all"/,
    ],
    [{ name: "a", type: "report", cron: "* * * * *", priority: 1.5 }, /priority/],
    [{ name: "a", type: "report", cron: "* * * * *", payload: { n: 1n } }, /cannot be written as JSON/],
  ];
  for (const [options, message] of cases) {
    assert.throws(() => defineSchedule(options), (error: Error) => {
      assert.match(error.message, message);
      assert.ok(isInvalidArgument(error), `${error.message} is an invalid argument`);
      return true;
    });
  }
});

test("defineSchedule fills in the defaults: UTC, an empty payload, the latest missed slot", () => {
  const schedule = defineSchedule({ name: "s", type: "report", cron: "@hourly" });
  assert.deepEqual(
    [
      schedule.timeZone,
      schedule.payload,
      schedule.payloadJson,
      schedule.missed,
      schedule.priority,
      schedule.maxAttempts,
    ],
    ["UTC", {}, "{}", "latest", 100, null],
  );
  assert.ok(Object.isFrozen(schedule));
});

// ---- Slots: time zones and daylight saving time ----

test("slots are read in the schedule's time zone", () => {
  const utc = daily({ timeZone: "UTC" });
  const newYork = daily({ timeZone: "America/New_York" });
  assert.equal(iso(slotAfter(utc, at("2025-06-01T00:00:00Z"))), "2025-06-01T02:30:00.000Z");
  assert.equal(iso(slotAfter(daily(), at("2025-06-01T00:00:00Z"))), "2025-06-01T00:30:00.000Z"); // CEST, UTC+2
  assert.equal(iso(slotAfter(newYork, at("2025-06-01T00:00:00Z"))), "2025-06-01T06:30:00.000Z"); // EDT, UTC-4
  assert.equal(iso(slotAfter(daily(), at("2025-01-10T00:00:00Z"))), "2025-01-10T01:30:00.000Z"); // CET, UTC+1
});

test("02:30 daily in Europe/Berlin on the spring-forward day fires once, at 03:00 CEST, right after the gap", () => {
  // 2025-03-30: clocks go from 02:00 CET straight to 03:00 CEST; 02:30 does not exist.
  const slots = slotsBetween(daily(), at("2025-03-28T12:00:00Z"), at("2025-04-01T12:00:00Z"), 10);
  assert.deepEqual(slots.map(iso), [
    "2025-03-29T01:30:00.000Z", // 02:30 CET
    "2025-03-30T01:00:00.000Z", // 03:00 CEST: the first time after the gap
    "2025-03-31T00:30:00.000Z", // 02:30 CEST
    "2025-04-01T00:30:00.000Z",
  ]);
});

test("02:30 daily in Europe/Berlin on the fall-back day fires once, though 02:30 happens twice", () => {
  // 2025-10-26: clocks go from 03:00 CEST back to 02:00 CET; 02:30 comes at 00:30Z and again at 01:30Z.
  const slots = slotsBetween(daily(), at("2025-10-25T12:00:00Z"), at("2025-10-27T12:00:00Z"), 10);
  assert.deepEqual(slots.map(iso), ["2025-10-26T00:30:00.000Z", "2025-10-27T01:30:00.000Z"]);
});

test("lists and ranges of times are fixed times too: none skipped in spring, none run twice in autumn", () => {
  const berlin = (cron: string) =>
    defineSchedule({ name: "l", type: "report", cron, timeZone: "Europe/Berlin" });
  const springDay = (cron: string) =>
    slotsBetween(berlin(cron), at("2025-03-29T22:00:00Z"), at("2025-03-30T04:00:00Z"), 10).map(iso);
  const autumnDay = (cron: string) =>
    slotsBetween(berlin(cron), at("2025-10-25T22:00:00Z"), at("2025-10-26T04:00:00Z"), 10).map(iso);
  // 02:00 and 02:30 do not exist on the spring day: both fire once, right after the gap (03:00 CEST).
  assert.deepEqual(springDay("0,30 2 * * *"), ["2025-03-30T01:00:00.000Z"]);
  assert.deepEqual(autumnDay("0,30 2 * * *"), ["2025-10-26T00:00:00.000Z", "2025-10-26T00:30:00.000Z"]);
  assert.deepEqual(springDay("30 1-3 * * *"), [
    "2025-03-30T00:30:00.000Z", // 01:30 CET
    "2025-03-30T01:00:00.000Z", // 03:00 CEST, for 02:30
    "2025-03-30T01:30:00.000Z", // 03:30 CEST
  ]);
  assert.deepEqual(autumnDay("30 1-3 * * *"), [
    "2025-10-25T23:30:00.000Z", // 01:30 CEST
    "2025-10-26T00:30:00.000Z", // 02:30 CEST, once
    "2025-10-26T02:30:00.000Z", // 03:30 CET
  ]);
});

test("an interval schedule runs on elapsed time across the transitions: no slot in the gap, the repeated hour twice", () => {
  const every30 = defineSchedule({
    name: "e",
    type: "report",
    cron: "*/30 * * * *",
    timeZone: "Europe/Berlin",
  });
  const spring = slotsBetween(every30, at("2025-03-30T00:00:00Z"), at("2025-03-30T01:30:00Z"), 10);
  assert.deepEqual(spring.map(iso), [
    "2025-03-30T00:30:00.000Z", // 01:30 CET
    "2025-03-30T01:00:00.000Z", // 03:00 CEST: 02:00 and 02:30 do not exist
    "2025-03-30T01:30:00.000Z",
  ]);
  const autumn = slotsBetween(every30, at("2025-10-26T00:00:00Z"), at("2025-10-26T02:00:00Z"), 10);
  assert.equal(
    autumn.length,
    4,
    "02:00 and 02:30 CEST, then 02:00 and 02:30 CET: every half hour of real time",
  );
});

test("latestSlot finds the latest slot of a long outage without walking it, including one exactly at the end", () => {
  const everySecond = defineSchedule({ name: "s", type: "report", cron: "* * * * * *" });
  const start = at("2025-01-01T00:00:00Z");
  assert.equal(latestSlot(everySecond, start, start + 7 * 86_400_000 + 500), start + 7 * 86_400_000);
  assert.equal(latestSlot(everySecond, start, start + 3 * SECOND), start + 3 * SECOND);
  assert.equal(latestSlot(everySecond, start, start + 999), null);
  assert.equal(
    latestSlot(daily(), at("2025-10-25T12:00:00Z"), at("2025-10-26T01:45:00Z")),
    at("2025-10-26T00:30:00Z"),
  );
});

// ---- Missed slots ----

test("after downtime, 'latest' fires the latest missed slot once, 'skip' none, 'all' each of them oldest first", () => {
  const base = at("2025-01-01T00:00:00Z");
  const hourly = (missed: "latest" | "skip" | "all") =>
    defineSchedule({ name: "h", type: "report", cron: "0 * * * *", missed });
  const now = base + 3.5 * 3_600_000; // 03:30: slots 01:00, 02:00 and 03:00 were missed
  assert.deepEqual(dueSlots(hourly("latest"), base, now).map(iso), ["2025-01-01T03:00:00.000Z"]);
  assert.deepEqual(dueSlots(hourly("skip"), base, now), []);
  assert.deepEqual(dueSlots(hourly("all"), base, now).map(iso), [
    "2025-01-01T01:00:00.000Z",
    "2025-01-01T02:00:00.000Z",
    "2025-01-01T03:00:00.000Z",
  ]);
  // On time (within missedAfterMs, a minute by default), 'skip' fires the slot.
  assert.deepEqual(dueSlots(hourly("skip"), base, base + 3_600_000 + 59_000).map(iso), [
    "2025-01-01T01:00:00.000Z",
  ]);
  // Nothing due before the first slot.
  assert.deepEqual(dueSlots(hourly("latest"), base, base + 1000), []);
});

test("'all' catches up at most 100 slots per pass", () => {
  const everySecond = defineSchedule({ name: "s", type: "report", cron: "* * * * * *", missed: "all" });
  const base = at("2025-01-01T00:00:00Z");
  const slots = dueSlots(everySecond, base, base + 1_000 * SECOND);
  assert.equal(slots.length, 100);
  assert.equal(slots[0], base + SECOND);
});

// ---- Registration ----

test("registerSchedule needs the handler first, a name of its own, and a payload the schema accepts", () => {
  const registry = new TaskHandlerRegistry();
  const schedule = defineSchedule({
    name: "nightly",
    type: "report",
    cron: "@daily",
    payload: { to: "ops" },
  });
  assert.throws(
    () => registry.registerSchedule(schedule),
    /Schedule 'nightly' is for task type 'report', which has no registered handler\. Register the handler first; registered types: \[\]/,
  );
  registry.registerHandler(
    defineHandler({ type: "report", schema: v.strictObject({ to: v.string() }), handle() {} }),
  );
  registry.registerSchedule(schedule);
  assert.throws(
    () =>
      registry.registerSchedule(
        defineSchedule({ name: "nightly", type: "report", cron: "@hourly", payload: { to: "x" } }),
      ),
    /A schedule named 'nightly' is registered already \(cron "@daily", type 'report'\)\. Give each schedule a name of its own/,
  );
  assert.throws(
    () =>
      registry.registerSchedule(
        defineSchedule({ name: "bad", type: "report", cron: "@daily", payload: { to: 1 } }),
      ),
    (error) =>
      error instanceof PayloadValidationError &&
      /^Schedule 'bad': Invalid payload for task type 'report': to:/.test(error.message),
  );
  assert.throws(() => registry.registerSchedule({ ...schedule }), /made by defineSchedule/);
  const replacement = defineSchedule({
    name: "nightly",
    type: "report",
    cron: "@hourly",
    payload: { to: "x" },
  });
  registry.registerSchedule(replacement, { allowOverride: true });
  assert.deepEqual(registry.getSchedules(), [replacement]);
  assert.equal(registry.unregisterSchedule("nightly"), true);
  assert.deepEqual(registry.getSchedules(), []);
});

// ---- The scheduler ----

/** A scheduler on `db`'s store, leading alone as `workerId`, on a clock the test moves. */
function schedulerFor(
  db: QueueDatabase,
  registry: TaskHandlerRegistry,
  clock: ManualClock,
  onError: (error: unknown) => void = (error) => assert.fail(String(error)),
  workerId = "w",
): Scheduler {
  const store = storeOf(db);
  return new Scheduler({
    store,
    registry,
    clock,
    syncClock: () => Promise.resolve(),
    leadership: new Leadership(store, clock, { workerId, ttlMs: 10_000, name: "schedules" }),
    onError,
    onFired: () => {},
  });
}

async function schedulerOn(missed: "latest" | "skip" | "all", clock: ManualClock) {
  const db = new QueueDatabase(":memory:");
  await db.initializeSchema();
  const registry = new TaskHandlerRegistry();
  registry.registerHandler("tick", () => {});
  registry.registerSchedule(
    defineSchedule({ name: "every_minute", type: "tick", cron: "* * * * *", missed }),
  );
  const store = storeOf(db);
  const errors: unknown[] = [];
  const scheduler = schedulerFor(db, registry, clock, (error) => errors.push(error));
  const fired = async () =>
    (await store.taskList({ limit: 1000, offset: 0 })).map((t) => iso(t.runAfter)).reverse();
  return { db, scheduler, fired, errors };
}

test("the scheduler fires each slot once, sleeps until the next, and after downtime follows the policy", async () => {
  for (const missed of ["latest", "all", "skip"] as const) {
    const clock = new ManualClock(at("2030-01-01T00:00:30Z"));
    const { db, scheduler, fired } = await schedulerOn(missed, clock);
    try {
      assert.equal(await scheduler.runPass(), 30_000, "first seen at 00:00:30: sleeps until 00:01");
      clock.advance(30_000);
      assert.equal(await scheduler.runPass(), 60_000);
      assert.equal(await scheduler.runPass(), 60_000, "a second pass at the same time fires nothing");
      assert.deepEqual(await fired(), ["2030-01-01T00:01:00.000Z"]);
      clock.advance(5 * 60_000 + 10_000); // down from 00:01 to 00:06:10: 00:02 to 00:06 missed
      await scheduler.runPass();
      const expected = {
        latest: ["2030-01-01T00:01:00.000Z", "2030-01-01T00:06:00.000Z"],
        all: ["00:01", "00:02", "00:03", "00:04", "00:05", "00:06"].map((t) => `2030-01-01T${t}:00.000Z`),
        skip: ["2030-01-01T00:01:00.000Z", "2030-01-01T00:06:00.000Z"], // 00:06 is 10 s late: on time
      }[missed];
      assert.deepEqual(await fired(), expected, missed);
    } finally {
      await db.close();
    }
  }
});

test("a scheduled task takes its handler's maxAttempts and queue where the schedule sets none", async () => {
  const clock = new ManualClock(at("2030-01-01T00:00:30Z"));
  const db = new QueueDatabase(":memory:");
  await db.initializeSchema();
  try {
    const registry = new TaskHandlerRegistry();
    registry.registerHandler(
      defineHandler({ type: "tick", schema: v.unknown(), maxAttempts: 9, queue: "ticks", handle() {} }),
    );
    registry.registerSchedule(defineSchedule({ name: "own", type: "tick", cron: "* * * * *" }));
    registry.registerSchedule(
      defineSchedule({ name: "set", type: "tick", cron: "* * * * *", maxAttempts: 2 }),
    );
    const store = storeOf(db);
    const scheduler = schedulerFor(db, registry, clock);
    await scheduler.runPass();
    clock.advance(30_000);
    await scheduler.runPass();
    const tasks = await store.taskList({ limit: 10, offset: 0 });
    assert.deepEqual(tasks.map((task) => [task.maxAttempts, task.queue]).sort(), [[2, "ticks"], [
      9,
      "ticks",
    ]]);
  } finally {
    await db.close();
  }
});

test("'skip' drops a slot that is later than missedAfterMs when the scheduler first gets to it", async () => {
  const clock = new ManualClock(at("2030-01-01T00:00:30Z"));
  const { db, scheduler, fired } = await schedulerOn("skip", clock);
  try {
    await scheduler.runPass();
    clock.advance(30_000 + 61_000); // 00:02:01: 00:01 is 61 s late, 00:02 one second
    await scheduler.runPass();
    assert.deepEqual(await fired(), ["2030-01-01T00:02:00.000Z"]);
    clock.advance(2 * 60_000); // 00:04:01, the next slot is 00:04, on time
    await scheduler.runPass();
    assert.deepEqual(await fired(), ["2030-01-01T00:02:00.000Z", "2030-01-01T00:04:00.000Z"]);
  } finally {
    await db.close();
  }
});

test("two schedulers on one database fire each slot once between them, whichever goes first", async () => {
  const clock = new ManualClock(at("2030-01-01T00:00:30Z"));
  const { db, scheduler, fired } = await schedulerOn("all", clock);
  const registry = new TaskHandlerRegistry();
  registry.registerHandler("tick", () => {});
  registry.registerSchedule(
    defineSchedule({ name: "every_minute", type: "tick", cron: "* * * * *", missed: "all" }),
  );
  const other = schedulerFor(db, registry, clock, undefined, "w2");
  try {
    await Promise.all([scheduler.runPass(), other.runPass()]);
    for (let i = 0; i < 5; i++) {
      clock.advance(60_000);
      await Promise.all([other.runPass(), scheduler.runPass()]);
    }
    clock.advance(3 * 60_000); // both were down for two slots
    await Promise.all([scheduler.runPass(), other.runPass()]);
    await Promise.all([scheduler.runPass(), other.runPass()]); // the loser of a race reads again and settles
    const slots = await fired();
    assert.deepEqual(slots, [...new Set(slots)], "no slot twice");
    assert.equal(slots.length, 8);
  } finally {
    await db.close();
  }
});

test("a worker fires its registry's schedules while its loop runs, and stops with it", async () => {
  const db = new QueueDatabase(":memory:");
  await db.initializeSchema();
  const registry = new TaskHandlerRegistry();
  const ran: number[] = [];
  registry.registerHandler("tick", (task) => void ran.push(task.runAfter));
  registry.registerSchedule(defineSchedule({ name: "every_second", type: "tick", cron: "* * * * * *" }));
  const worker = new WorkerEngine({ db, workerId: "w", handlerRegistry: registry, pollIntervalMs: 20 });
  const stop = new AbortController();
  const loop = worker.runLoop({ signal: stop.signal });
  try {
    const deadline = Date.now() + 20_000;
    while (ran.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(ran.length >= 2, `ran ${ran.length} ticks`);
    assert.ok(ran.every((slot) => slot % 1000 === 0), "each task is due at its slot, a whole second");
  } finally {
    stop.abort();
    await loop;
  }
  const count = (await storeOf(db).taskList({ limit: 1000, offset: 0 })).length;
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(
    (await storeOf(db).taskList({ limit: 1000, offset: 0 })).length,
    count,
    "nothing fired after the loop ended",
  );
  await db.close();
});
