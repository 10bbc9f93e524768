import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  isTaskStatus,
  nextStatus,
  TASK_STATUSES,
  type TaskStatus,
  TERMINAL_STATUSES,
  TRANSITIONS,
} from "../mod.ts";
import type { TaskEvent } from "../src/task.ts";

const EVENTS: readonly TaskEvent[] = [
  "claim",
  "complete",
  "retry_later",
  "fail",
  "expire",
  "expire_final",
  "release",
  "snooze",
  "cancel",
  "requeue",
  "requeue_waiting",
  "dependencies_done",
  "dependency_lost",
];

/** Every allowed move, written out by hand: `from --event--> to`. */
const ALLOWED: readonly (readonly [TaskStatus, TaskEvent, TaskStatus])[] = [
  ["queued", "claim", "running"],
  ["running", "complete", "completed"],
  ["running", "retry_later", "queued"],
  ["running", "fail", "failed"],
  ["running", "expire", "queued"],
  ["running", "expire_final", "failed"],
  ["running", "release", "queued"],
  ["running", "snooze", "queued"],
  ["waiting", "cancel", "cancelled"],
  ["queued", "cancel", "cancelled"],
  ["running", "cancel", "cancelled"],
  ["failed", "requeue", "queued"],
  ["cancelled", "requeue", "queued"],
  ["failed", "requeue_waiting", "waiting"],
  ["cancelled", "requeue_waiting", "waiting"],
  ["waiting", "dependencies_done", "queued"],
  ["waiting", "dependency_lost", "cancelled"],
];

describe("task statuses", () => {
  test("there are exactly six statuses: waiting, queued, running, completed, failed, cancelled", () => {
    assert.deepEqual([...TASK_STATUSES], [
      "waiting",
      "queued",
      "running",
      "completed",
      "failed",
      "cancelled",
    ]);
  });

  test("the terminal statuses are completed, failed and cancelled", () => {
    assert.deepEqual([...TERMINAL_STATUSES].sort(), ["cancelled", "completed", "failed"]);
  });

  test("the processing and dead_letter statuses of the original design do not exist", () => {
    assert.equal(isTaskStatus("processing"), false);
    assert.equal(isTaskStatus("dead_letter"), false);
  });

  test("isTaskStatus is true for each of the six statuses", () => {
    for (const status of TASK_STATUSES) assert.equal(isTaskStatus(status), true, status);
  });

  test("isTaskStatus is false for other strings, other cases and padded names", () => {
    for (const value of ["", "QUEUED", "Queued", " queued", "queued ", "done", "pending", "toString"]) {
      assert.equal(isTaskStatus(value), false, JSON.stringify(value));
    }
  });

  test("isTaskStatus is false for values that are not strings", () => {
    for (const value of [undefined, null, 0, 1, true, {}, ["queued"], { toString: () => "queued" }]) {
      assert.equal(isTaskStatus(value), false, String(value));
    }
  });
});

describe("nextStatus", () => {
  for (const [from, event, to] of ALLOWED) {
    test(`a ${from} task becomes ${to} on ${event}`, () => {
      assert.equal(nextStatus(from, event), to);
    });
  }

  test("every pair of status and event not listed as allowed is refused with undefined", () => {
    const allowed = new Set(ALLOWED.map(([from, event]) => `${from}/${event}`));
    let refused = 0;
    for (const status of TASK_STATUSES) {
      for (const event of EVENTS) {
        if (allowed.has(`${status}/${event}`)) continue;
        assert.equal(nextStatus(status, event), undefined, `${status} on ${event}`);
        refused++;
      }
    }
    assert.equal(refused, TASK_STATUSES.length * EVENTS.length - ALLOWED.length);
  });

  test("nothing moves a task out of completed", () => {
    for (const event of EVENTS) assert.equal(nextStatus("completed", event), undefined, event);
  });

  test("only a requeue moves a task out of failed or cancelled: to queued, or to waiting for its dependencies", () => {
    for (const status of ["failed", "cancelled"] as const) {
      for (const event of EVENTS) {
        assert.equal(
          nextStatus(status, event),
          event === "requeue" ? "queued" : event === "requeue_waiting" ? "waiting" : undefined,
          `${status} on ${event}`,
        );
      }
    }
  });

  test("only claim and cancel move a queued task", () => {
    const moves = EVENTS.filter((event) => nextStatus("queued", event) !== undefined);
    assert.deepEqual(moves, ["claim", "cancel"]);
  });

  test("a task can only become running by being claimed from queued", () => {
    for (const status of TASK_STATUSES) {
      for (const event of EVENTS) {
        if (nextStatus(status, event) === "running") assert.deepEqual([status, event], ["queued", "claim"]);
      }
    }
  });

  test("a task can only become completed from running", () => {
    for (const status of TASK_STATUSES) {
      for (const event of EVENTS) {
        if (nextStatus(status, event) === "completed") {
          assert.deepEqual([status, event], ["running", "complete"]);
        }
      }
    }
  });

  test("a task cannot be cancelled once it is completed, failed or cancelled", () => {
    for (const status of TERMINAL_STATUSES) assert.equal(nextStatus(status, "cancel"), undefined, status);
  });

  test("no event leaves a status unchanged", () => {
    for (const status of TASK_STATUSES) {
      for (const event of EVENTS) assert.notEqual(nextStatus(status, event), status, `${status} on ${event}`);
    }
  });
});

describe("TRANSITIONS", () => {
  test("the table has exactly the thirteen events", () => {
    assert.deepEqual(Object.keys(TRANSITIONS).sort(), [...EVENTS].sort());
  });

  test("the table lists exactly the allowed moves", () => {
    const fromTable = Object.entries(TRANSITIONS).flatMap(([event, { from, to }]) =>
      from.map((status) => `${status} --${event}--> ${to}`)
    ).sort();
    const expected = ALLOWED.map(([from, event, to]) => `${from} --${event}--> ${to}`).sort();
    assert.deepEqual(fromTable, expected);
  });

  test("any sequence of events keeps a task within the five statuses and out of completed once there", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...EVENTS), { maxLength: 50 }), (events) => {
        let status: TaskStatus = "queued";
        for (const event of events) {
          const next = nextStatus(status, event);
          if (status === "completed") assert.equal(next, undefined);
          if (next !== undefined) status = next;
          assert.ok(isTaskStatus(status));
        }
      }),
      { numRuns: 500 },
    );
  });
});
