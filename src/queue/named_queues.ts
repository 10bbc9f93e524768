/**
 * `Queue`'s named queues: their fleet-wide limits (concurrency, rate), pausing and resuming them, and
 * listing them with their counts.
 *
 * @module
 */
import { invalidType } from "../errors.ts";
import { concurrencyLimit, type QueueLimits, queueName, rateLimit } from "../queue_name.ts";
import type { QueueInfo, QueueSettings } from "../store/store.ts";
import { atNow, type QueueContext } from "./context.ts";

/** {@link Queue.setQueueLimits}'s work. */
export function setQueueLimits(
  context: QueueContext,
  name: string,
  limits: Partial<QueueLimits>,
): Promise<QueueSettings> {
  const checked = queueName(name);
  if (typeof limits !== "object" || limits === null) throw invalidType("The limits must be an object.");
  const change = {
    ...(limits.concurrency === undefined ? {} : { concurrency: concurrencyLimit(limits.concurrency) }),
    ...(limits.rate === undefined ? {} : { rate: rateLimit(limits.rate) }),
  };
  return atNow(context, (now) => context.store.queueUpdate(checked, change, now));
}

/** {@link Queue.pauseQueue}'s work. */
export function pauseQueue(context: QueueContext, name: string): Promise<QueueSettings> {
  const checked = queueName(name);
  return atNow(context, (now) => context.store.queueUpdate(checked, { paused: true }, now));
}

/** {@link Queue.resumeQueue}'s work. */
export async function resumeQueue(context: QueueContext, name: string): Promise<QueueSettings> {
  const checked = queueName(name);
  const settings = await atNow(context, (now) => context.store.queueUpdate(checked, { paused: false }, now));
  context.db.notifyTasksAvailable();
  return settings;
}

/** {@link Queue.listQueues}'s work. */
export function listQueues(context: QueueContext): Promise<QueueInfo[]> {
  return atNow(context, (now) => context.store.queueList(now));
}
