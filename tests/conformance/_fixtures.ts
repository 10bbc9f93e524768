/**
 * Small helpers the conformance tests share: new tasks, claims and fences, written against the `Store`
 * contract only.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createdTask } from "../../src/enqueue_item.ts";
import type { Task } from "../../src/task.ts";
import type {
  ClaimParams,
  Fence,
  Finish,
  LeasedTask,
  NewTask,
  Recorded,
  Start,
  Store,
} from "../../src/store/store.ts";
import { T0 } from "./_stores.ts";

export { T0 };

/** The lease every claim here takes, unless it says otherwise. */
export const LEASE_MS = 1000;

/** A task to insert: type `t`, payload `{}`, priority 0, 3 attempts, runnable at T0, queue `default`. */
export function newTask(fields: Partial<NewTask> = {}): NewTask {
  return {
    type: "t",
    payload: "{}",
    priority: 0,
    maxAttempts: 3,
    runAfter: T0,
    idempotencyKey: null,
    timeoutMs: null,
    retryPolicy: null,
    queue: "default",
    uniqueKey: null,
    uniqueForMs: null,
    ...fields,
  };
}

/** Inserts `tasks` (or that many plain tasks) at `now`; returns their ids, checking each was created. */
export async function insert(store: Store, tasks: readonly NewTask[] | number, now = T0): Promise<number[]> {
  const list = typeof tasks === "number" ? Array.from({ length: tasks }, () => newTask()) : tasks;
  const inserted = await store.taskInsertMany(list, now);
  assert.equal(inserted.length, list.length, "one result per task");
  for (const result of inserted) assert.equal(result.created, true, `task ${result.id} was created`);
  return inserted.map((result) => result.id);
}

/** Inserts one task and returns its id. */
export async function insertOne(store: Store, fields: Partial<NewTask> = {}, now = T0): Promise<number> {
  const [id] = await insert(store, [newTask(fields)], now);
  return id!;
}

/** Claims with defaults: worker `w1`, one task, a lease of {@link LEASE_MS}, at T0, fifo. */
export function claim(store: Store, params: Partial<ClaimParams> = {}): Promise<LeasedTask[]> {
  return store.taskClaim({
    workerId: "w1",
    limit: 1,
    leaseMs: LEASE_MS,
    now: T0,
    strategy: "fifo",
    ...params,
  });
}

/** Claims exactly one task, failing the test when there is none. */
export async function claimOne(store: Store, params: Partial<ClaimParams> = {}): Promise<LeasedTask> {
  const leased = await claim(store, { ...params, limit: 1 });
  assert.equal(leased.length, 1, `${params.workerId ?? "w1"} claimed one task`);
  return leased[0]!;
}

/** The fence of a claim. */
export function fenceOf(leased: LeasedTask): Fence {
  return { id: leased.task.id, leaseToken: leased.leaseToken };
}

/** A start of a claim at `at`. */
export function startOf(leased: LeasedTask, at: number): Start {
  return { ...fenceOf(leased), at };
}

/** Records outcomes alone; returns the ids whose fence held. */
export async function finish(store: Store, finishes: readonly Finish[], now: number): Promise<Set<number>> {
  const recorded: Recorded = await store.taskRecord({ starts: [], finishes }, now);
  assert.deepEqual(recorded.started, new Set(), "no starts were recorded");
  return recorded.finished;
}

/** The stored task, failing the test when there is none. */
export async function get(store: Store, id: number): Promise<Task> {
  const task = await store.taskGet(id);
  assert.ok(task, `task ${id} exists`);
  return task;
}

/**
 * A task as the store must return it right after inserting `task` at `now` with this id: the one `Queue`
 * builds without reading it back, which relies on exactly this.
 */
export function inserted(id: number, task: NewTask, now: number): Task {
  return createdTask(id, task, now);
}

/** Sorted ids, for comparing sets of ids in messages that read well. */
export function sorted(ids: Iterable<number>): number[] {
  return [...ids].sort((a, b) => a - b);
}

/** Asserts that `promise` rejects with an instance of `Class`, and returns the error. */
export async function rejection<E extends Error>(
  promise: Promise<unknown> | (() => unknown),
  Class: new (...args: never[]) => E,
): Promise<E> {
  let caught: unknown;
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof Class, `expected a ${Class.name}, got ${String(caught)}`);
  return caught;
}
