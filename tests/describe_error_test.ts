/**
 * Whatever a handler throws becomes a failed attempt with a readable message: `describeError` never throws,
 * and a worker whose handlers throw such values goes on working.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Queue, TaskHandlerRegistry, WorkerEngine } from "../mod.ts";
import { describeError, MAX_ERROR_LENGTH } from "../src/describe_error.ts";
import { withDb } from "./_helpers.ts";

const circular: Record<string, unknown> = { a: 1 };
circular.self = circular;

class NamelessError extends Error {
  override get name(): string {
    throw new Error("no name for you");
  }
}

/** Values handlers have thrown, and what each becomes. */
const THROWN: [string, () => unknown, RegExp][] = [
  ["a BigInt", () => 10n ** 30n, /^1000000000000000000000000000000n$/],
  ["an object holding a BigInt", () => ({ big: 1n }), /^\{"big":"1n"\}$/],
  ["a circular object", () => circular, /"self":"\[circular\]"/],
  [
    "an object with a throwing getter",
    () => ({
      get boom() {
        throw new Error("getter");
      },
    }),
    /cannot be described \(\[object Object\]\)/,
  ],
  ["an Error whose name getter throws", () => new NamelessError("the message"), /^the message$/],
  ["an Error whose message is not a string", () => Object.assign(new Error(), { message: 42 }), /^42$/],
  [
    "a Proxy that throws on every question",
    () =>
      new Proxy({}, {
        get: () => {
          throw new Error("trap");
        },
        getPrototypeOf: () => {
          throw new Error("trap");
        },
        ownKeys: () => {
          throw new Error("trap");
        },
      }),
    /cannot be described/,
  ],
  ["undefined", () => undefined, /^undefined$/],
  ["null", () => null, /^null$/],
  ["a symbol", () => Symbol("s"), /^Symbol\(s\)$/],
  ["a TypeError", () => new TypeError("bad"), /^TypeError: bad$/],
  ["an empty Error", () => new Error(""), /^Error$/],
];

describe("describeError", () => {
  for (const [what, make, expected] of THROWN) {
    test(`describes ${what} without throwing`, () => {
      assert.match(describeError(make()), expected);
    });
  }

  test("cuts a long message to MAX_ERROR_LENGTH, with an ellipsis", () => {
    const text = describeError(new Error("x".repeat(MAX_ERROR_LENGTH * 2)));
    assert.equal(text.length, MAX_ERROR_LENGTH + 1);
    assert.ok(text.endsWith("…"));
  });
});

test("a worker whose handlers throw such values records each as a failed attempt and keeps going", async () => {
  await withDb(async (db) => {
    const queue = new Queue(db);
    const registry = new TaskHandlerRegistry();
    for (const [index, [, make]] of THROWN.entries()) {
      registry.registerHandler(`throw_${index}`, () => {
        throw make();
      });
      registry.registerHandler(`reject_${index}`, () => Promise.reject(make()));
    }
    registry.registerHandler("fine", () => {});
    const types = THROWN.flatMap((_, index) => [`throw_${index}`, `reject_${index}`]);
    await queue.enqueueMany([...types.map((type) => ({ type, maxAttempts: 1 })), { type: "fine" }]);
    const worker = new WorkerEngine({ db, workerId: "w", handlerRegistry: registry, concurrency: 4 });
    const summary = await worker.runLoop({ untilEmpty: true });
    assert.equal(summary.failed, types.length);
    assert.equal(summary.completed, 1);
    for (const task of await queue.list({ limit: 1000 })) {
      if (task.type === "fine") continue;
      const [, make, expected] = THROWN[Number(task.type.split("_")[1])];
      assert.equal(task.status, "failed", task.type);
      assert.match(task.errorMessage ?? "", expected, `${task.type}: ${describeError(make())}`);
    }
  });
});
