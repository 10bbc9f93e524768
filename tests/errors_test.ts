/**
 * PrismQ's errors: every named one is a `PrismqError` with a stable `code`, its `name` and any `cause`; the
 * built-in `TypeError` and `RangeError` that PrismQ's checks throw carry the code `INVALID_ARGUMENT`, which
 * tells them apart from the same classes thrown by a mistake in code.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import {
  BackupRefusedError,
  DatabaseError,
  defineHandler,
  INVALID_ARGUMENT,
  isInvalidArgument,
  LeaseLostError,
  NonRetryableError,
  PayloadTooLargeError,
  PayloadValidationError,
  PrismqError,
  Queue,
  TaskHandlerAlreadyRegisteredError,
  TaskHandlerNotRegisteredError,
  TaskHandlerRegistry,
  TaskNotFoundError,
  TaskStateError,
  TaskTimeoutError,
  WorkerEngine,
} from "../mod.ts";
import { TaskAssertionError } from "../testing.ts";
import { UsageError } from "../src/cli/args.ts";
import { rejectionOf, withDb } from "./_helpers.ts";

/** Every named error, made as PrismQ makes it, with the code it must carry. */
const NAMED: [PrismqError, string][] = [
  [new TaskHandlerAlreadyRegisteredError("email"), "HANDLER_ALREADY_REGISTERED"],
  [new TaskHandlerNotRegisteredError("email", new Set(["sms"])), "HANDLER_NOT_REGISTERED"],
  [new PayloadValidationError("email", [{ path: "to", message: "missing" }]), "PAYLOAD_INVALID"],
  [new PayloadTooLargeError("email", 2048, 1024), "PAYLOAD_TOO_LARGE"],
  [new TaskNotFoundError(7), "TASK_NOT_FOUND"],
  [new TaskStateError(7, "completed", "cancel", ["queued", "running"]), "TASK_STATE_CONFLICT"],
  [new NonRetryableError("The amount must be positive."), "NON_RETRYABLE"],
  [new LeaseLostError(7, "reclaimed"), "LEASE_LOST"],
  [new TaskTimeoutError(7, 100), "TASK_TIMEOUT"],
  [new DatabaseError("The database 'x.db' failed."), "DATABASE_ERROR"],
  [new BackupRefusedError("Cannot back up to /x: it is a folder."), "BACKUP_REFUSED"],
  [new TaskAssertionError("Expected a queued task."), "TASK_ASSERTION_FAILED"],
  [new UsageError("Missing task id."), "USAGE"],
];

describe("PrismqError", () => {
  for (const [error, code] of NAMED) {
    test(`${error.name} is a PrismqError and an Error, with the code ${code}`, () => {
      assert.ok(error instanceof PrismqError);
      assert.ok(error instanceof Error);
      assert.equal(error.code, code);
      assert.equal(error.name, error.constructor.name);
      assert.match(error.message, /^[A-Z'#]/, "the message is a sentence");
    });
  }

  test("the codes are distinct", () => {
    const codes = NAMED.map(([, code]) => code);
    assert.equal(new Set(codes).size, codes.length);
  });

  test("an error with a cause keeps it", () => {
    const cause = new Error("SQLITE_BUSY");
    assert.equal(new DatabaseError("The database is locked.", { cause }).cause, cause);
    assert.equal(new NonRetryableError("no", { cause }).cause, cause);
    assert.equal(new BackupRefusedError("no", { cause }).cause, cause);
    const url = new DatabaseError("The database URL 'x' is invalid.", {
      cause,
      code: "DATABASE_URL_INVALID",
    });
    assert.equal(url.cause, cause);
    assert.equal(url.code, "DATABASE_URL_INVALID");
  });

  test("the library's own failures are PrismqErrors with their codes", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      const missing = await rejectionOf(queue.cancel(999));
      assert.ok(missing instanceof PrismqError);
      assert.equal(missing.code, "TASK_NOT_FOUND");
      const task = await queue.enqueue("noop", {});
      await queue.cancel(task.id);
      const state = await rejectionOf(queue.cancel(task.id));
      assert.ok(state instanceof PrismqError);
      assert.equal(state.code, "TASK_STATE_CONFLICT");
    });
  });
});

describe("INVALID_ARGUMENT", () => {
  const registry = new TaskHandlerRegistry();
  const cases: [string, () => unknown, typeof TypeError | typeof RangeError][] = [
    ["a blank task type", () => registry.registerHandler("  ", () => {}), TypeError],
    ["a handler that is not a function", () => registry.registerHandler("x", 42 as never), TypeError],
    ["a fractional handler timeout", () => {
      defineHandler({ type: "x", schema: v.object({}), handle: () => {}, timeoutMs: 1.5 });
    }, RangeError],
  ];
  for (const [what, fn, type] of cases) {
    test(`${what} is refused with a ${type.name} whose code is INVALID_ARGUMENT`, () => {
      assert.throws(fn, (error: unknown) => {
        assert.ok(error instanceof type, String(error));
        assert.equal((error as { code?: unknown }).code, INVALID_ARGUMENT);
        assert.equal(isInvalidArgument(error), true);
        return true;
      });
    });
  }

  test("a queue or worker option out of range is refused with a marked RangeError", async () => {
    await withDb((db) => {
      for (
        const make of [
          () => new Queue(db, { maxPayloadBytes: 0 }),
          () => new WorkerEngine({ db, workerId: "w", concurrency: 0 }),
        ]
      ) {
        assert.throws(make, (error: unknown) => {
          assert.ok(error instanceof RangeError, String(error));
          return isInvalidArgument(error);
        });
      }
    });
  });

  test("an enqueue the queue refuses rejects with a marked TypeError or RangeError", async () => {
    await withDb(async (db) => {
      const queue = new Queue(db);
      for (const bad of [{ priority: 1.5 }, { delayMs: -1 }, { idempotencyKey: "" }]) {
        const error = await rejectionOf(queue.enqueue("noop", {}, bad));
        assert.equal(isInvalidArgument(error), true, JSON.stringify(bad));
      }
    });
  });

  test("a TypeError of JavaScript's own is not marked", () => {
    let error: unknown;
    try {
      (undefined as unknown as { x: number }).x;
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof TypeError);
    assert.equal(isInvalidArgument(error), false);
    assert.equal(isInvalidArgument(new RangeError("Invalid array length")), false);
    assert.equal(isInvalidArgument("INVALID_ARGUMENT"), false);
    assert.equal(isInvalidArgument({ code: INVALID_ARGUMENT }), false, "not an Error");
  });
});
