/**
 * `noop`: does nothing, optionally after a pause. For health checks and benchmarks.
 *
 * @module
 */
import * as v from "valibot";
import { payloadObject } from "./_payload.ts";
import { defineHandler } from "../mod.ts";

const schema = payloadObject({
  sleepMs: v.optional(
    v.pipe(
      v.number("must be a number of milliseconds"),
      v.integer("must be a whole number of milliseconds"),
      v.minValue(0, "must be at least 0"),
      v.maxValue(60_000, "must be at most 60000 (one minute)"),
    ),
    0,
  ),
});

export default defineHandler({
  type: "noop",
  schema,
  description: "Does nothing, after an optional pause; for health checks and benchmarks.",
  version: "1.0.0",
  async handle(task, ctx) {
    // No timer at all for 0, so that benchmarks measure the queue and not setTimeout.
    if (task.payload.sleepMs > 0) await sleep(task.payload.sleepMs, ctx.signal);
  },
});

/** Resolves after `ms`, or rejects with `signal.reason` as soon as the signal aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      // A pending timer would keep the process alive after a cancelled task, up to a minute.
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
