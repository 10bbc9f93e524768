/**
 * The command line's exit codes for errors: 2 for a mistake in what was asked (its own usage errors, and
 * the library's refusals, told by class and code), 1 for a failure while doing it, 70 for a bug.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  BackupRefusedError,
  DatabaseError,
  LeaseLostError,
  PayloadTooLargeError,
  PayloadValidationError,
  TaskHandlerNotRegisteredError,
  TaskNotFoundError,
  TaskStateError,
} from "../../mod.ts";
import { invalidRange, invalidType } from "../../src/errors.ts";
import { UsageError } from "../../src/cli/args.ts";
import { describeFailure, EXIT, exitCodeFor } from "../../src/cli/exit.ts";

/** What JavaScript itself throws for a mistake in code. */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected it to throw");
}

const CASES: [string, unknown, number][] = [
  ["a UsageError", new UsageError("Missing task id."), EXIT.usage],
  ["a TypeError of PrismQ's checks", invalidType("Task type cannot be empty."), EXIT.usage],
  ["a RangeError of PrismQ's checks", invalidRange("concurrency must be a whole number."), EXIT.usage],
  ["an invalid payload", new PayloadValidationError("t", [{ path: "to", message: "missing" }]), EXIT.usage],
  ["an oversize payload", new PayloadTooLargeError("t", 2, 1), EXIT.usage],
  ["a type with no handler", new TaskHandlerNotRegisteredError("t", new Set()), EXIT.usage],
  ["a task that does not exist", new TaskNotFoundError(9), EXIT.usage],
  ["an unreadable database URL", new DatabaseError("x", { code: "DATABASE_URL_INVALID" }), EXIT.usage],
  ["a database failure", new DatabaseError("The database is locked."), EXIT.failure],
  ["a task in the wrong state", new TaskStateError(1, "completed", "cancel", ["queued"]), EXIT.failure],
  ["a refused backup", new BackupRefusedError("Cannot back up."), EXIT.failure],
  ["a lost lease", new LeaseLostError(1, "reclaimed"), EXIT.failure],
  [
    "an Error from outside",
    Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" }),
    EXIT.failure,
  ],
  ["an Error that only claims a usage code", Object.assign(new Error("x"), { code: "USAGE" }), EXIT.failure],
  ["a TypeError from code", thrownBy(() => (undefined as unknown as { a: 1 }).a), EXIT.bug],
  ["a RangeError from code", thrownBy(() => new Array(-1)), EXIT.bug],
  ["a ReferenceError", new ReferenceError("x is not defined"), EXIT.bug],
  ["a SyntaxError", thrownBy(() => JSON.parse("{")), EXIT.bug],
  ["a URIError", thrownBy(() => decodeURIComponent("%")), EXIT.bug],
  ["a thrown string", "oops", EXIT.bug],
  ["a thrown undefined", undefined, EXIT.bug],
];

describe("exitCodeFor", () => {
  for (const [what, error, code] of CASES) {
    test(`${what}: exit ${code}`, () => assert.equal(exitCodeFor(error), code));
  }
});

describe("describeFailure", () => {
  test("a usage error: its message and hint on one line", () => {
    const error = new UsageError("Missing task id.", "Usage: prismq show <id>");
    assert.equal(
      describeFailure("prismq show", error, exitCodeFor(error)),
      "prismq show: Missing task id. Usage: prismq show <id>\n",
    );
  });

  test("a failure with a message of several lines: one line", () => {
    const error = new DatabaseError("The database failed:\nSQLITE_FULL");
    assert.equal(describeFailure("prismq run", error, 1), "prismq run: The database failed: SQLITE_FULL\n");
  });

  test("a bug: says it is one, with the error's name, and how to get the stack trace", () => {
    const error = new TypeError("x is not a function");
    assert.equal(
      describeFailure("prismq list", error, EXIT.bug),
      "prismq list: internal error, a bug in prismq: TypeError: x is not a function. Run it again with " +
        "PRISMQ_DEBUG=1 for the stack trace, and report it.\n",
    );
  });
});
