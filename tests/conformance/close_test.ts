/**
 * Conformance: closing a store. Closing again is harmless and gives the same promise, and every call after
 * it rejects with a DatabaseError that says so, in the same words on every store, rather than a driver's own
 * error (a PostgreSQL pool's "connection lost") or a hang.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DatabaseError } from "../../src/errors.ts";
import { describeEachStore } from "./_harness.ts";
import { insert, newTask, T0 } from "./_fixtures.ts";

describeEachStore("closing a store", (it) => {
  it("closing twice gives the same promise, and every call after it rejects with a DatabaseError", async (ctx) => {
    const { store } = await ctx.fresh();
    const [id] = await insert(store, [newTask()], T0);
    const closing = store.close();
    assert.equal(store.close(), closing);
    await closing;
    const calls: [string, () => unknown][] = [
      ["taskGet", () => store.taskGet(id!)],
      ["taskInsertOne", () => store.taskInsertOne(newTask(), T0)],
      ["taskInsertMany", () => store.taskInsertMany([newTask(), newTask()], T0)],
      ["taskStats", () => store.taskStats(T0)],
      ["taskPending", () => store.taskPending(T0)],
      // Answered at once while open, from what the store last read.
      ["queuePausedNames", () => store.queuePausedNames()],
    ];
    for (const [name, call] of calls) {
      // A rejection, not a throw: callers await these.
      const result = call();
      assert.ok(result instanceof Promise, `${name} threw instead of rejecting`);
      await assert.rejects(result, (error: Error) => {
        assert.ok(error instanceof DatabaseError, `${name}: expected a DatabaseError, got ${error}`);
        // One wording for every store: what happened, and what to do.
        assert.match(
          error.message,
          /^The database '[^']+' is closed: its QueueDatabase was closed\. Open a new one to go on using it\.$/,
          name,
        );
        return true;
      });
    }
  });
});
