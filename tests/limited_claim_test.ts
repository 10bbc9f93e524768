/**
 * Which limited queues a claim takes from under their limits (`limitedScope`): each once, in name order
 * (the order their rows are locked in, so that two claims never wait for each other in a cycle), and
 * whether the claim serves limited queues only. A queue named twice must not become two arms of the claim,
 * each taking what the queue's limits leave. The stores' side is tests/conformance/queues_test.ts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { limitedScope } from "../src/store/limited_claim.ts";
import type { ClaimParams } from "../src/store/store.ts";

const claim = (queues?: string[]): ClaimParams => ({
  workerId: "w",
  limit: 10,
  leaseMs: 1000,
  now: 0,
  strategy: "fifo",
  queues,
});

test("limitedScope names each limited queue a claim serves once, in name order", () => {
  const limited = new Set(["b", "a", "c"]);
  assert.deepEqual(limitedScope(claim(["c", "x", "a", "c", "a", "x"]), limited), {
    limited: true,
    queues: ["a", "c"],
    skipFree: false,
  });
  assert.deepEqual(limitedScope(claim(["b", "b"]), limited), {
    limited: true,
    queues: ["b"],
    skipFree: true,
  });
  assert.deepEqual(limitedScope(claim(), limited), {
    limited: true,
    queues: ["a", "b", "c"],
    skipFree: false,
  });
});

test("limitedScope leaves a claim of free queues alone", () => {
  assert.deepEqual(limitedScope(claim(["x", "y"]), new Set(["a"])), {
    limited: false,
    queues: [],
    skipFree: false,
  });
  assert.deepEqual(limitedScope(claim(["x"]), new Set()), { limited: false, queues: [], skipFree: false });
});
