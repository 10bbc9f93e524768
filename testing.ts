/**
 * Helpers for an application's own tests (`prismq/testing`): an in-memory queue with a clock that moves only
 * when told to, `drain()` to run what is due without sleeping, and assertions on what was enqueued.
 *
 * ```ts
 * import { TaskHandlerRegistry } from "prismq";
 * import { assertEnqueued, createTestQueue } from "prismq/testing";
 *
 * const registry = new TaskHandlerRegistry();
 * registry.registerHandler("send_reminder", () => {});
 * const testQueue = await createTestQueue({ registry });
 *
 * await testQueue.queue.enqueue("send_reminder", { userId: 7 }, { delayMs: 3_600_000 });
 * await assertEnqueued(testQueue, { type: "send_reminder", payload: { userId: 7 } });
 * console.log(await testQueue.drain()); // [] : not due for an hour
 * testQueue.clock.advance(3_600_000);
 * console.log(await testQueue.drain()); // [{ id: 1, type: "send_reminder", outcome: "completed", ... }]
 * await testQueue.close();
 * ```
 *
 * @module
 */

export { createTestQueue, TestQueue } from "./src/testing/test_queue.ts";
export type { DrainedTask, DrainOptions, DrainOutcome, TestQueueOptions } from "./src/testing/test_queue.ts";

export {
  assertEnqueued,
  assertNotEnqueued,
  listEnqueued,
  TaskAssertionError,
} from "./src/testing/assertions.ts";
export type { EnqueuedFilter, QueueSource } from "./src/testing/assertions.ts";

export { ManualClock } from "./src/clock.ts";
