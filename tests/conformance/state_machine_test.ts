/**
 * Conformance: a model-based property test of the task state machine, on every store. Random sequences of
 * enqueues, claims by a few workers, outcomes (results and snoozes among them), progress, heartbeats and
 * releases with remembered (possibly stale)
 * lease tokens, time steps, reaps, cancels, requeues and purges run against the store and a small in-memory
 * model that follows `TRANSITIONS` and the fencing rules. Enqueued tasks may depend on earlier ones (or on
 * ids that do not exist, which is refused): the model waits, releases and cancels down the chain as the
 * store must, with the same messages. After every step every task must match the model exactly, and the
 * structural invariants must hold. Each run starts on a fresh store. Tasks go to a few named queues, whose
 * limits and pause change at random (see "Named queues" below): the model predicts what each claim may
 * take, and what each count again of tasks claimed ahead past their rate window counts, and the store
 * must never exceed a limit nor claim from a paused queue.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type ClaimStrategy,
  DependencyError,
  nextStatus,
  type Task,
  TASK_STATUSES,
  TaskNotFoundError,
  TaskStateError,
  type TaskStatus,
  TERMINAL_STATUSES,
} from "../../mod.ts";
import type { Fence, Finish, LeasedTask, Store } from "../../src/store/store.ts";
import { describeEachStore, type StoreContext } from "./_harness.ts";

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);
const WORKERS = ["w0", "w1", "w2"] as const;
const TYPES = ["a", "b"] as const;
const STRATEGIES: readonly ClaimStrategy[] = ["priority", "fifo", "lifo", "weighted_random"];
const MAX_TASKS = 5;
const NUM_RUNS = 100;
const MAX_STEPS = 40;

// ---------------------------------------------------------------------------------------------------------
// Named queues: limits and pause. Tasks go to a few queues; an operation sets a queue's concurrency limit,
// rate limit or pause (each left as it was, set, or removed); a claim may name the queues it serves. The
// model predicts what each claim may take: nothing from a paused queue, from a limited one at most what its
// limits leave, the free queues' tasks and the limited ones' merged in the strategy's order; a task claimed
// ahead from a rate-limited queue must start by the end of the window its claim counted in, or be counted
// again in a later one (a count again, which the model predicts and counts in its windows as a claim).

const QUEUES = ["default", "q1", "q2"] as const;

type QueueOp = {
  kind: "queue";
  queue: string;
  concurrency: number | null | undefined;
  rate: { limit: number; intervalMs: number } | null | undefined;
  paused: boolean | undefined;
};

const queueOpArb: fc.Arbitrary<QueueOp> = fc.record({
  kind: fc.constant("queue" as const),
  queue: fc.constantFrom(...QUEUES),
  concurrency: fc.option(fc.oneof(fc.constant(null), fc.integer({ min: 1, max: 3 })), { nil: undefined }),
  rate: fc.option(
    fc.oneof(
      fc.constant(null),
      fc.record({ limit: fc.integer({ min: 1, max: 3 }), intervalMs: fc.constantFrom(500, 1000, 3000) }),
    ),
    { nil: undefined },
  ),
  paused: fc.option(fc.boolean(), { nil: undefined }),
});

interface QueueState {
  concurrency: number | null;
  rate: { limit: number; intervalMs: number } | null;
  paused: boolean;
  /** The rate window the store counts claims in, as the queue's row holds it. */
  windowStart: number | null;
  windowCount: number;
}

class QueueModel {
  /** The queues with a row of settings. */
  readonly rows = new Map<string, QueueState>();

  get(name: string): QueueState {
    return this.rows.get(name) ??
      { concurrency: null, rate: null, paused: false, windowStart: null, windowCount: 0 };
  }

  /** Limited, and not paused: claimed from under its limits. */
  limited(name: string): boolean {
    const q = this.get(name);
    return !q.paused && (q.concurrency !== null || q.rate !== null);
  }

  update(op: QueueOp): QueueState {
    const q = { ...this.get(op.queue) };
    if (op.concurrency !== undefined) q.concurrency = op.concurrency;
    if (op.rate !== undefined) {
      // A plain object, as the store returns it (fast-check's records have no prototype).
      q.rate = op.rate && { limit: op.rate.limit, intervalMs: op.rate.intervalMs };
      q.windowStart = null;
      q.windowCount = 0;
    }
    if (op.paused !== undefined) q.paused = op.paused;
    this.rows.set(op.queue, q);
    return q;
  }

  /**
   * A count again of `n` tasks claimed ahead past their window, as `Store.queueCountAgain` says: none for a
   * paused queue, all (no deadline) for one without a rate limit, else what the window at `now` has room
   * for, counted in it.
   */
  countAgain(name: string, n: number, now: number): { counted: number; startBy: number | null } {
    const q = this.get(name);
    if (q.paused) return { counted: 0, startBy: null };
    if (q.rate === null) return { counted: n, startBy: null };
    const window = this.window(name, now);
    const counted = Math.max(0, Math.min(n, q.rate.limit - window.count));
    if (counted > 0) {
      this.rows.set(name, { ...q, windowStart: window.start, windowCount: window.count + counted });
    }
    return { counted, startBy: window.start + q.rate.intervalMs };
  }

  /** The window `now` counts in: the queue's own when `now` is not past it (a late claim counts in it). */
  window(name: string, now: number): { start: number; count: number } {
    const q = this.get(name);
    const start = Math.floor(now / q.rate!.intervalMs) * q.rate!.intervalMs;
    if (q.windowStart !== null && start <= q.windowStart) {
      return { start: q.windowStart, count: q.windowCount };
    }
    return { start, count: 0 };
  }
}

/** What a claim may take: the tasks allowed, and for a deterministic strategy exactly which, in order. */
interface ClaimPrediction {
  allowed: Set<number>;
  /** At most this many from each limited queue served. */
  takes: Map<string, number>;
  ids?: number[];
  size?: number;
  /** At least this many, for a weighted draw whose size depends on the draw. */
  minSize: number;
}

function predictClaim(model: Model, op: Extract<Op, { kind: "claim" }>): ClaimPrediction {
  const { queues } = model;
  const served = (queue: string) => op.queues === undefined || op.queues.includes(queue);
  const runnable = model.runnable().filter((t) => served(t.queue) && !queues.get(t.queue).paused);
  const start = Math.min(op.start, op.limit);
  const takes = new Map<string, number>();
  for (const name of queues.rows.keys()) {
    if (!served(name) || !queues.limited(name)) continue;
    const q = queues.get(name);
    let take = op.limit;
    if (q.concurrency !== null) take = Math.min(take, q.concurrency - runningIn(model, name));
    if (q.rate !== null) take = Math.min(take, q.rate.limit - queues.window(name, model.now).count);
    takes.set(name, Math.max(0, take));
  }
  const free = runnable.filter((t) => !takes.has(t.queue));
  const limitedOf = (name: string) => runnable.filter((t) => t.queue === name);
  const allowed = new Set(
    runnable.filter((t) => !takes.has(t.queue) || takes.get(t.queue)! > 0).map((t) => t.id),
  );
  if (op.strategy === "weighted_random") {
    if (takes.size === 0) {
      const size = Math.min(op.limit, free.length);
      return { allowed, takes, size, minSize: size };
    }
    // The free queues give their best `limit` by priority as candidates, each limited queue its `take`.
    const candidates = Math.min(op.limit, free.length) +
      [...takes].reduce((sum, [name, take]) => sum + Math.min(take, limitedOf(name).length), 0);
    return { allowed, takes, minSize: Math.min(start, candidates) };
  }
  const order = claimOrder(op.strategy);
  const candidates = [
    ...free,
    ...[...takes].flatMap(([name, take]) => limitedOf(name).sort(order).slice(0, take)),
  ].sort(order);
  const starters = candidates.slice(0, start);
  const ahead = candidates.filter((t) => !starters.includes(t)).slice(0, op.limit - start);
  const ids = [...starters, ...ahead].map((t) => t.id);
  return { allowed: new Set(ids), takes, ids, size: ids.length, minSize: ids.length };
}

function runningIn(model: Model, queue: string): number {
  return [...model.tasks.values()].filter((t) => t.queue === queue && t.status === "running").length;
}

/**
 * Checks a claim against the queues' limits and pauses, before the model takes it in: nothing from a
 * paused or unserved queue, from a limited queue no more than its limits leave, and a task claimed ahead
 * from a rate-limited one carries the end of its window. Then counts the claims in the model's rate
 * windows, as the store does.
 */
function checkClaimAgainstQueues(
  model: Model,
  op: Extract<Op, { kind: "claim" }>,
  prediction: ClaimPrediction,
  leased: readonly LeasedTask[],
): void {
  assert.ok(leased.length <= op.limit, "no more than the claim's limit");
  assert.ok(
    leased.length >= prediction.minSize,
    `at least ${prediction.minSize} claimed, got ${leased.length}`,
  );
  for (const { task, startBy } of leased) {
    const q = model.queues.get(task.queue);
    assert.ok(!q.paused, `task ${task.id} claimed from the paused queue ${task.queue}`);
    assert.ok(
      op.queues === undefined || op.queues.includes(task.queue),
      `task ${task.id} of an unserved queue`,
    );
    const rated = prediction.takes.has(task.queue) && q.rate !== null && task.startedAt === null;
    const window = rated ? model.queues.window(task.queue, model.now) : undefined;
    assert.equal(startBy, window && window.start + q.rate!.intervalMs, `task ${task.id}: startBy`);
  }
  for (const [name, take] of prediction.takes) {
    const n = leased.filter((l) => l.task.queue === name).length;
    assert.ok(n <= take, `${n} claimed from ${name}, whose limits leave ${take}`);
    if (n === 0) continue;
    const q = model.queues.get(name);
    if (q.concurrency !== null) {
      const running = runningIn(model, name) + n;
      assert.ok(
        running <= q.concurrency,
        `${running} running in ${name}, over its limit of ${q.concurrency}`,
      );
    }
    if (q.rate !== null) {
      const window = model.queues.window(name, model.now);
      assert.ok(window.count + n <= q.rate.limit, `${window.count + n} claims in ${name}'s window`);
      model.queues.rows.set(name, { ...q, windowStart: window.start, windowCount: window.count + n });
    }
  }
}

async function applyQueueOp(store: Store, model: Model, op: QueueOp): Promise<void> {
  const { kind: _, queue, ...change } = op;
  const settings = await store.queueUpdate(queue, change, model.now);
  const q = model.queues.update(op);
  assert.deepEqual(settings, { name: queue, concurrency: q.concurrency, rate: q.rate, paused: q.paused });
  const listed = await store.queueList(model.now);
  for (const info of listed) {
    const expected = model.queues.get(info.name);
    assert.deepEqual(
      [info.concurrency, info.rate, info.paused, info.running],
      [expected.concurrency, expected.rate, expected.paused, runningIn(model, info.name)],
      `queue ${info.name} as listed`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Operations

type Outcome = "completed" | "result" | "retry" | "snooze" | "failed";

type Op =
  | {
    kind: "enqueue";
    tasks: {
      type: string;
      maxAttempts: number;
      priority: number;
      delay: number;
      deps: number[];
      queue: string;
    }[];
  }
  | {
    kind: "claim";
    worker: number;
    limit: number;
    start: number;
    leaseMs: number;
    strategy: ClaimStrategy;
    queues: string[] | undefined;
  }
  | QueueOp
  | { kind: "countAgain"; queue: string; n: number }
  | { kind: "start"; tokens: number[] }
  | { kind: "finish"; picks: { token: number; outcome: Outcome; delay: number; started: boolean }[] }
  | { kind: "extend"; token: number; ms: number }
  | { kind: "progress"; token: number; value: number }
  | { kind: "heartbeat"; tokens: number[]; ms: number }
  | { kind: "release"; tokens: number[] }
  | { kind: "advance"; ms: number }
  | { kind: "reap" }
  | { kind: "cancel"; task: number }
  | { kind: "requeue"; task: number }
  | { kind: "requeueFailed"; type: string | undefined }
  | { kind: "purge"; statuses: TaskStatus[]; olderThanMs: number };

const enqueueArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constant("enqueue" as const),
  tasks: fc.array(
    fc.record({
      type: fc.constantFrom(...TYPES),
      maxAttempts: fc.integer({ min: 1, max: 4 }),
      priority: fc.integer({ min: 0, max: 3 }),
      delay: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2000 })),
      // Picks among the tasks enqueued so far (see Model.idAt): none mostly, and now and then one that
      // does not exist.
      deps: fc.oneof(
        { arbitrary: fc.constant<number[]>([]), weight: 2 },
        { arbitrary: fc.array(fc.nat({ max: MAX_TASKS }), { minLength: 1, maxLength: 2 }), weight: 3 },
      ),
      queue: fc.constantFrom(...QUEUES),
    }),
    { minLength: 1, maxLength: 3 },
  ),
});

/** Token picks count back from the newest remembered claim, so that they shrink towards it. */
const tokenArb = fc.nat({ max: 20 });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: enqueueArb, weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant("claim" as const),
      worker: fc.integer({ min: 0, max: WORKERS.length - 1 }),
      limit: fc.integer({ min: 1, max: 3 }),
      // How many start at once; the rest are claimed ahead (capped at the limit).
      start: fc.integer({ min: 0, max: 3 }),
      leaseMs: fc.constantFrom(500, 1000, 2000),
      strategy: fc.constantFrom(...STRATEGIES),
      queues: fc.option(fc.subarray([...QUEUES], { minLength: 1 }), { nil: undefined }),
    }),
    weight: 5,
  },
  { arbitrary: queueOpArb, weight: 3 },
  {
    // Tasks claimed ahead whose window ended, counted again in the current one: the claims after it must
    // find the window as full as the count left it.
    arbitrary: fc.record({
      kind: fc.constant("countAgain" as const),
      queue: fc.constantFrom(...QUEUES),
      n: fc.integer({ min: 1, max: 3 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("finish" as const),
      picks: fc.array(
        fc.record({
          token: tokenArb,
          outcome: fc.constantFrom<Outcome>("completed", "result", "retry", "snooze", "failed"),
          delay: fc.integer({ min: 0, max: 2000 }),
          // Its start recorded in the same write, as when a quick handler starts and ends in one turn.
          started: fc.boolean(),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    }),
    weight: 5,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("start" as const),
      tokens: fc.array(tokenArb, { minLength: 1, maxLength: 3 }),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("extend" as const),
      token: tokenArb,
      ms: fc.integer({ min: 0, max: 2000 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("progress" as const),
      token: tokenArb,
      value: fc.nat({ max: 100 }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("heartbeat" as const),
      tokens: fc.array(tokenArb, { minLength: 1, maxLength: 3 }),
      ms: fc.integer({ min: 0, max: 2000 }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("release" as const),
      tokens: fc.array(tokenArb, { minLength: 1, maxLength: 3 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      // Steps that land exactly on lease deadlines (claims lease for 500, 1000 or 2000 ms) or one past them.
      ms: fc.oneof(fc.constantFrom(0, 1, 500, 501, 1000, 1001), fc.integer({ min: 0, max: 3000 })),
    }),
    weight: 4,
  },
  { arbitrary: fc.constant<Op>({ kind: "reap" }), weight: 3 },
  {
    arbitrary: fc.record({ kind: fc.constant("cancel" as const), task: fc.nat({ max: MAX_TASKS }) }),
    weight: 2,
  },
  {
    arbitrary: fc.record({ kind: fc.constant("requeue" as const), task: fc.nat({ max: MAX_TASKS }) }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("requeueFailed" as const),
      type: fc.constantFrom(undefined, ...TYPES),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("purge" as const),
      // Any statuses, not only terminal ones: a queued or running task has no finishedAt and must survive.
      statuses: fc.subarray([...TASK_STATUSES], { minLength: 1 }),
      olderThanMs: fc.integer({ min: 0, max: 5000 }),
    }),
    weight: 1,
  },
);

/** Every run starts with at least one task. */
const programArb = fc.tuple(enqueueArb, fc.array(opArb, { maxLength: MAX_STEPS - 1, size: "max" })).map((
  [first, rest],
) => [first, ...rest]);

// ---------------------------------------------------------------------------------------------------------
// The model

interface ModelTask {
  id: number;
  type: string;
  queue: string;
  status: TaskStatus;
  priority: number;
  attempts: number;
  maxAttempts: number;
  runAfter: number;
  leaseToken: string | null;
  leaseUntil: number | null;
  lockedBy: string | null;
  errorMessage: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  /** What the last completion with a result stored, and the last progress written (parsed JSON). */
  result: unknown;
  progress: unknown;
  /** Whether a worker died holding it claimed ahead since its last outcome (not part of a Task: the claim reports it). */
  unconfirmedStart: boolean;
  /** The ids it depends on (not part of a Task: the store keeps them in a table of their own). */
  deps: number[];
}

/** One remembered claim: what the worker was handed, as a worker keeps it. */
interface Claim {
  workerId: string;
  id: number;
  token: string;
  /**
   * The attempt number the worker runs (the claim's, or one more for a task claimed ahead); a worker
   * retries only while it is below maxAttempts.
   */
  attempts: number;
  maxAttempts: number;
}

class Model {
  now = T0;
  readonly tasks = new Map<number, ModelTask>();
  /** Every id ever enqueued, in order. */
  readonly enqueued: number[] = [];
  readonly purged = new Set<number>();
  /** Every claim ever returned, newest last. */
  readonly claims: Claim[] = [];
  /** The named queues' settings and rate windows. */
  readonly queues = new QueueModel();

  /** The claim `back` steps before the newest, or undefined when nothing was claimed yet. */
  claimAt(back: number): Claim | undefined {
    if (this.claims.length === 0) return undefined;
    return this.claims[this.claims.length - 1 - (back % this.claims.length)];
  }

  /** An id among those enqueued (purged included), or one that never existed. */
  idAt(index: number): number {
    const i = index % (this.enqueued.length + 1);
    return i < this.enqueued.length ? this.enqueued[i] : Math.max(0, ...this.enqueued) + 1000;
  }

  /** The task this fence still holds, if any: running and carrying exactly this token. */
  held(fence: Fence): ModelTask | undefined {
    const task = this.tasks.get(fence.id);
    if (!task || task.status !== "running" || task.leaseToken !== fence.leaseToken) return undefined;
    return task;
  }

  runnable(): ModelTask[] {
    return [...this.tasks.values()].filter((t) => t.status === "queued" && t.runAfter <= this.now);
  }
}

/** Moves a model task by `event`, failing the test if the table does not allow it. */
function move(task: ModelTask, event: Parameters<typeof nextStatus>[1]): void {
  const to = nextStatus(task.status, event);
  assert.ok(to !== undefined, `model bug: ${event} from ${task.status}`);
  task.status = to;
}

/**
 * The waiting tasks whose dependencies (those not purged) have all completed, among the dependents of
 * `ids`: queued, due no earlier than now.
 */
function releaseModel(model: Model, ids: Iterable<number>): void {
  const done = new Set(ids);
  for (const m of model.tasks.values()) {
    if (m.status !== "waiting" || !m.deps.some((dep) => done.has(dep))) continue;
    const alive = m.deps.flatMap((dep) => model.tasks.get(dep) ?? []);
    if (alive.every((dep) => dep.status === "completed")) {
      move(m, "dependencies_done");
      m.runAfter = Math.max(m.runAfter, model.now);
    }
  }
}

/**
 * Cancels every task waiting, directly or down a chain, on one of `roots` that failed or was cancelled.
 * Each names the dependency it waited on (the lowest id of those that doom it) and the task that doomed
 * the chain (the lowest id, for that dependency).
 */
function cascadeModel(model: Model, roots: Iterable<number>): void {
  const dependents = (id: number) =>
    [...model.tasks.values()].filter((t) => t.status === "waiting" && t.deps.includes(id));
  const reasons = new Map<number, { via: number; root: number }[]>();
  const seen = new Set<string>();
  const frontier: { id: number; root: number }[] = [];
  const add = (id: number, via: number, root: number) => {
    const key = `${id} ${via} ${root}`;
    if (seen.has(key)) return;
    seen.add(key);
    reasons.set(id, [...(reasons.get(id) ?? []), { via, root }]);
    frontier.push({ id, root });
  };
  for (const root of new Set(roots)) {
    const r = model.tasks.get(root);
    if (!r || (r.status !== "failed" && r.status !== "cancelled")) continue;
    for (const w of dependents(root)) add(w.id, root, root);
  }
  while (frontier.length > 0) {
    const { id, root } = frontier.shift()!;
    for (const w of dependents(id)) add(w.id, id, root);
  }
  const why = (root: number) => {
    const r = model.tasks.get(root)!;
    return r.status === "failed" ? `failed: ${r.errorMessage}` : "was cancelled";
  };
  const messages = new Map<number, string>();
  for (const [id, list] of reasons) {
    const { via, root } = list.sort((a, b) => a.via - b.via || a.root - b.root)[0]!;
    messages.set(
      id,
      via === root
        ? `Dependency task ${root} ${why(root)}`
        : `Dependency task ${via} was cancelled because task ${root} ${why(root)}`,
    );
  }
  for (const [id, message] of messages) {
    const m = model.tasks.get(id)!;
    move(m, "dependency_lost");
    m.errorMessage = message;
    m.finishedAt = model.now;
  }
}

function leaseExpiredMessage(lockedBy: string | null): string {
  return `lease expired: worker ${lockedBy ?? "?"} stopped renewing it`;
}

// ---------------------------------------------------------------------------------------------------------
// Running one operation on both sides

function sortedIds(ids: Iterable<number>): number[] {
  return [...ids].sort((a, b) => a - b);
}

function dedupeBy<T>(items: T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const k = key(item);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The order a deterministic strategy claims in. */
function claimOrder(strategy: Exclude<ClaimStrategy, "weighted_random">) {
  return {
    priority: (a: ModelTask, b: ModelTask) =>
      a.priority - b.priority || a.runAfter - b.runAfter || a.id - b.id,
    fifo: (a: ModelTask, b: ModelTask) => a.id - b.id,
    lifo: (a: ModelTask, b: ModelTask) => b.id - a.id,
  }[strategy];
}

async function expectRefusal(
  run: () => Promise<Task>,
  model: Model,
  id: number,
  what: string,
): Promise<void> {
  const task = model.tasks.get(id);
  await assert.rejects(run, (error: unknown) => {
    if (!task) {
      assert.ok(error instanceof TaskNotFoundError, `${what}: expected TaskNotFoundError, got ${error}`);
      assert.equal(error.taskId, id);
    } else {
      assert.ok(error instanceof TaskStateError, `${what}: expected TaskStateError, got ${error}`);
      assert.equal(error.taskId, id);
      assert.equal(error.status, task.status);
    }
    return true;
  });
}

function checkReturnedTask(actual: Task, expected: ModelTask, what: string): void {
  assert.deepEqual(pick(actual), pickModel(expected), what);
}

async function apply(store: Store, model: Model, op: Op): Promise<void> {
  const now = model.now;
  switch (op.kind) {
    case "enqueue": {
      const room = MAX_TASKS - model.enqueued.length;
      const tasks = op.tasks.slice(0, Math.max(0, room)).map((t) => ({
        ...t,
        deps: [...new Set(t.deps.map((pick) => model.idAt(pick)))],
      }));
      if (tasks.length === 0) return;
      const rows = tasks.map((t) => ({
        type: t.type,
        payload: "{}",
        priority: t.priority,
        maxAttempts: t.maxAttempts,
        runAfter: now + t.delay,
        idempotencyKey: null,
        timeoutMs: null,
        retryPolicy: null,
        queue: t.queue,
        uniqueKey: null,
        uniqueForMs: null,
        dependsOn: t.deps,
      }));
      const missing = tasks.flatMap((t) => t.deps).find((id) => !model.tasks.has(id));
      if (missing !== undefined) {
        await assert.rejects(store.taskInsertMany(rows, now), (error: unknown) => {
          assert.ok(error instanceof DependencyError, `expected a DependencyError, got ${error}`);
          assert.equal(error.dependencyId, missing);
          return true;
        });
        return;
      }
      const inserted = await store.taskInsertMany(rows, now);
      assert.equal(inserted.length, tasks.length);
      for (const [i, { id, created, existing }] of inserted.entries()) {
        assert.equal(existing, undefined);
        assert.equal(created, true);
        assert.ok(!model.tasks.has(id), `id ${id} reused`);
        const t = tasks[i];
        const m: ModelTask = {
          id,
          type: t.type,
          queue: t.queue,
          status: "queued",
          priority: t.priority,
          attempts: 0,
          maxAttempts: t.maxAttempts,
          runAfter: now + t.delay,
          leaseToken: null,
          leaseUntil: null,
          lockedBy: null,
          errorMessage: null,
          startedAt: null,
          finishedAt: null,
          result: null,
          progress: null,
          unconfirmedStart: false,
          deps: t.deps,
        };
        if (t.deps.some((dep) => model.tasks.get(dep)!.status !== "completed")) m.status = "waiting";
        model.tasks.set(id, m);
        model.enqueued.push(id);
      }
      // A dependency failed or cancelled already cancels the new task at once.
      cascadeModel(model, tasks.flatMap((t) => t.deps));
      for (const { id } of inserted) {
        const stored = await store.taskGet(id);
        assert.ok(stored, `task ${id} was not stored`);
        checkReturnedTask(stored, model.tasks.get(id)!, "inserted task");
      }
      return;
    }

    case "claim": {
      const workerId = WORKERS[op.worker];
      const prediction = predictClaim(model, op);
      const leased: LeasedTask[] = await store.taskClaim({
        workerId,
        limit: op.limit,
        start: op.start,
        leaseMs: op.leaseMs,
        now,
        strategy: op.strategy,
        queues: op.queues,
      });
      checkClaimAgainstQueues(model, op, prediction, leased);
      const startCount = Math.min(op.start, leased.length);
      assert.equal(
        leased.filter((l) => l.task.startedAt !== null).length,
        startCount,
        "tasks started at once",
      );
      assert.ok(
        leased.every((l, i) => (l.task.startedAt !== null) === (i < startCount)),
        "the tasks that start at once come first",
      );
      const ids = leased.map((l) => l.task.id);
      assert.equal(new Set(ids).size, ids.length, "a claim returned one task twice");
      for (const id of ids) assert.ok(prediction.allowed.has(id), `claimed task ${id} was not claimable`);
      if (prediction.size !== undefined) assert.equal(leased.length, prediction.size, "claim size");
      // The first in claim order start at once.
      if (prediction.ids) assert.deepEqual(ids, prediction.ids, `${op.strategy} claim order`);
      const tokens = new Set(model.claims.map((c) => c.token));
      for (const [i, { task, leaseToken, recordStartFirst }] of leased.entries()) {
        assert.match(leaseToken, /^[0-9a-f]{24}$/);
        assert.ok(!tokens.has(leaseToken), "a lease token was issued twice");
        const m = model.tasks.get(task.id)!;
        const startsNow = i < startCount;
        move(m, "claim");
        m.lockedBy = workerId;
        m.leaseToken = leaseToken;
        m.leaseUntil = now + op.leaseMs;
        if (startsNow) {
          m.attempts += 1;
          m.startedAt = now;
        } else {
          m.startedAt = null;
        }
        assert.equal(recordStartFirst, !startsNow && m.unconfirmedStart, "recordStartFirst");
        checkReturnedTask(task, m, "claimed task");
        model.claims.push({
          workerId,
          id: task.id,
          token: leaseToken,
          attempts: startsNow ? task.attempts : task.attempts + 1,
          maxAttempts: task.maxAttempts,
        });
      }
      return;
    }

    case "finish": {
      const picks = dedupeBy(
        op.picks.flatMap((p) => {
          const claim = model.claimAt(p.token);
          return claim ? [{ claim, outcome: p.outcome, delay: p.delay, started: p.started }] : [];
        }),
        (p) => p.claim.token,
      );
      if (picks.length === 0) return;
      const finishes: Finish[] = picks.map(({ claim, outcome, delay }, i): Finish => {
        const fence = { id: claim.id, leaseToken: claim.token };
        // As the worker does: a failure with no attempts left fails the task instead of retrying it.
        if (outcome === "retry" && claim.attempts < claim.maxAttempts) {
          return { ...fence, status: "queued", runAfter: now + delay, errorMessage: `retry ${now} ${i}` };
        }
        if (outcome === "completed") return { ...fence, status: "completed" };
        if (outcome === "result") return { ...fence, status: "completed", result: `{"at":${now},"i":${i}}` };
        if (outcome === "snooze") return { ...fence, status: "snoozed", runAfter: now + delay };
        return { ...fence, status: "failed", errorMessage: `failed ${now} ${i}` };
      });
      const expectedHeld = new Set<number>();
      const starts = picks.filter((p) => p.started).map((p) => ({
        id: p.claim.id,
        leaseToken: p.claim.token,
        at: now,
      }));
      const recorded = await store.taskRecord({ starts, finishes }, now);
      const held = recorded.finished;
      for (const finish of finishes) {
        const m = model.held(finish);
        if (!m) continue;
        expectedHeld.add(m.id);
        m.leaseToken = null;
        m.leaseUntil = null;
        // A handler of it returned: its starts need no longer be recorded before its handler runs.
        m.unconfirmedStart = false;
        if (finish.status === "snoozed") {
          // The attempt is given back, as a release gives it back; the error message stays.
          move(m, "snooze");
          if (m.startedAt !== null) m.attempts = Math.max(m.attempts - 1, 0);
          m.runAfter = finish.runAfter;
          continue;
        }
        // An outcome counts the attempt of a task claimed ahead whose start was not recorded.
        if (m.startedAt === null) {
          m.attempts += 1;
          m.startedAt = now;
        }
        if (finish.status === "completed") {
          move(m, "complete");
          m.finishedAt = now;
          if (finish.result !== undefined) m.result = JSON.parse(finish.result);
        } else if (finish.status === "queued") {
          move(m, "retry_later");
          m.runAfter = finish.runAfter;
          m.errorMessage = finish.errorMessage;
          m.finishedAt = null;
        } else {
          move(m, "fail");
          m.errorMessage = finish.errorMessage;
          m.finishedAt = now;
        }
      }
      // Every completion and failure given, whether or not its fence held: the store's are idempotent.
      releaseModel(model, finishes.flatMap((f) => f.status === "completed" ? [f.id] : []));
      cascadeModel(model, finishes.flatMap((f) => f.status === "failed" ? [f.id] : []));
      assert.deepEqual(sortedIds(held), sortedIds(expectedHeld), "ids whose fence held on finish");
      const startsHeld = new Set(
        starts.filter((start) => expectedHeld.has(start.id)).map((start) => start.id),
      );
      assert.deepEqual(
        sortedIds(recorded.started),
        sortedIds(startsHeld),
        "starts written with their outcome",
      );
      return;
    }

    case "start": {
      const starts = dedupeBy(
        op.tokens.flatMap((back) => {
          const claim = model.claimAt(back);
          return claim ? [{ id: claim.id, leaseToken: claim.token, at: now }] : [];
        }),
        (f) => String(f.id),
      );
      if (starts.length === 0) return;
      const recorded = await store.taskRecord({ starts, finishes: [] }, now);
      const expectedHeld = new Set<number>();
      for (const start of starts) {
        const m = model.held(start);
        if (!m) continue;
        expectedHeld.add(m.id);
        // Recorded once: a second start of the same claim changes nothing.
        if (m.startedAt === null) {
          m.attempts += 1;
          m.startedAt = now;
        }
      }
      assert.deepEqual(sortedIds(recorded.started), sortedIds(expectedHeld), "ids whose fence held on start");
      assert.equal(recorded.finished.size, 0);
      return;
    }

    case "extend": {
      const claim = model.claimAt(op.token);
      if (!claim) return;
      const fence = { id: claim.id, leaseToken: claim.token };
      const m = model.held(fence);
      const ok = await store.taskExtendLease(fence, now + op.ms, now);
      assert.equal(ok, m !== undefined, "extend succeeds exactly while the fence holds");
      if (m) m.leaseUntil = now + op.ms;
      return;
    }

    case "progress": {
      const claim = model.claimAt(op.token);
      if (!claim) return;
      const fence = { id: claim.id, leaseToken: claim.token };
      const m = model.held(fence);
      const ok = await store.taskSetProgress(fence, JSON.stringify({ done: op.value }), now);
      assert.equal(ok, m !== undefined, "progress is written exactly while the fence holds");
      if (m) m.progress = { done: op.value };
      return;
    }

    case "heartbeat": {
      // A worker holds one token per task, so a heartbeat names each task once.
      const fences = dedupeBy(
        op.tokens.flatMap((back) => {
          const claim = model.claimAt(back);
          return claim ? [{ id: claim.id, leaseToken: claim.token }] : [];
        }),
        (f) => String(f.id),
      );
      if (fences.length === 0) return;
      const lost = await store.workerHeartbeat(null, fences, now + op.ms);
      const expectedLost = [];
      for (const fence of fences) {
        const m = model.held(fence);
        if (m) m.leaseUntil = now + op.ms;
        else expectedLost.push({ id: fence.id, status: model.tasks.get(fence.id)?.status ?? "deleted" });
      }
      assert.deepEqual(
        [...lost].sort((a, b) => a.id - b.id),
        expectedLost.sort((a, b) => a.id - b.id),
        "leases a heartbeat could not extend",
      );
      return;
    }

    case "release": {
      const fences = dedupeBy(
        op.tokens.flatMap((back) => {
          const claim = model.claimAt(back);
          return claim ? [{ id: claim.id, leaseToken: claim.token }] : [];
        }),
        (f) => f.leaseToken,
      );
      if (fences.length === 0) return;
      const held = await store.taskReleaseMany(fences, now);
      const expectedHeld = new Set<number>();
      for (const fence of fences) {
        const m = model.held(fence);
        if (!m) continue;
        expectedHeld.add(m.id);
        move(m, "release");
        // A task claimed ahead that never started keeps its attempts as they were.
        if (m.startedAt !== null) m.attempts = Math.max(m.attempts - 1, 0);
        // Back in its place: it keeps its due time.
        m.runAfter = Math.min(m.runAfter, now);
        m.leaseToken = null;
        m.leaseUntil = null;
      }
      assert.deepEqual(sortedIds(held), sortedIds(expectedHeld), "ids whose fence held on release");
      return;
    }

    case "advance":
      model.now += op.ms;
      return;

    case "queue":
      return await applyQueueOp(store, model, op);

    case "countAgain": {
      const counted = await store.queueCountAgain(op.queue, op.n, now);
      assert.deepEqual(counted, model.queues.countAgain(op.queue, op.n, now), `count again in ${op.queue}`);
      return;
    }

    case "reap": {
      const expected = { requeued: 0, failed: 0 };
      const result = await store.taskReapExpired(now);
      for (const m of model.tasks.values()) {
        if (m.status !== "running" || m.leaseUntil === null || m.leaseUntil >= now) continue;
        m.leaseToken = null;
        m.leaseUntil = null;
        if (m.startedAt === null) {
          // Claimed ahead, never recorded as started: back with its attempts, its next start recorded first.
          move(m, "expire");
          m.runAfter = now;
          m.unconfirmedStart = true;
          expected.requeued++;
          continue;
        }
        m.errorMessage = leaseExpiredMessage(m.lockedBy);
        if (m.attempts >= m.maxAttempts) {
          move(m, "expire_final");
          m.finishedAt = now;
          expected.failed++;
        } else {
          move(m, "expire");
          m.runAfter = now;
          expected.requeued++;
        }
      }
      cascadeModel(
        model,
        [...model.tasks.values()].flatMap((m) =>
          m.finishedAt === now && (m.status === "failed" || m.status === "cancelled") ? [m.id] : []
        ),
      );
      assert.deepEqual(result, expected, "reap counts");
      return;
    }

    case "cancel": {
      const id = model.idAt(op.task);
      const m = model.tasks.get(id);
      if (m && nextStatus(m.status, "cancel") !== undefined) {
        const task = await store.taskCancel(id, now);
        move(m, "cancel");
        m.finishedAt = now;
        m.leaseToken = null;
        m.leaseUntil = null;
        checkReturnedTask(task, m, "cancelled task");
        cascadeModel(model, [id]);
      } else {
        await expectRefusal(() => store.taskCancel(id, now), model, id, `cancel ${id}`);
      }
      return;
    }

    case "requeue": {
      const id = model.idAt(op.task);
      const m = model.tasks.get(id);
      const deps = m ? m.deps.flatMap((dep) => model.tasks.get(dep) ?? []) : [];
      const lost = deps.filter((dep) => dep.status === "failed" || dep.status === "cancelled");
      if (m && nextStatus(m.status, "requeue") !== undefined && lost.length > 0) {
        await assert.rejects(store.taskRequeue(id, now), (error: unknown) => {
          assert.ok(error instanceof DependencyError, `expected a DependencyError, got ${error}`);
          assert.equal(error.dependencyId, Math.min(...lost.map((dep) => dep.id)));
          return true;
        });
      } else if (m && nextStatus(m.status, "requeue") !== undefined) {
        const task = await store.taskRequeue(id, now);
        const waits = deps.some((dep) => dep.status !== "completed");
        requeueModel(m, now, waits ? "requeue_waiting" : "requeue");
        checkReturnedTask(task, m, "requeued task");
      } else {
        await expectRefusal(() => store.taskRequeue(id, now), model, id, `requeue ${id}`);
      }
      return;
    }

    case "requeueFailed": {
      const n = await store.taskRequeueFailed(op.type, now);
      let expected = 0;
      for (const m of model.tasks.values()) {
        if (m.status !== "failed" || (op.type !== undefined && m.type !== op.type)) continue;
        requeueModel(m, now);
        expected++;
      }
      assert.equal(n, expected, "requeueFailed count");
      return;
    }

    case "purge": {
      const finishedBefore = now - op.olderThanMs;
      const n = await store.taskPurge(op.statuses, finishedBefore);
      let expected = 0;
      // The newest task always stays, so that SQLite never hands its id to a new task.
      const newest = Math.max(...model.tasks.keys());
      // A failed or cancelled task stays while a task depending on it is kept and has not completed (as the
      // purge began: one purged in the same purge still keeps it, until the next), so that no retry can run
      // that task without it.
      const before = [...model.tasks.values()];
      const keptForDependents = (m: ModelTask) =>
        (m.status === "failed" || m.status === "cancelled") &&
        before.some((d) => d.deps.includes(m.id) && d.status !== "completed");
      for (const m of before) {
        if (!op.statuses.includes(m.status) || m.finishedAt === null || m.finishedAt >= finishedBefore) {
          continue;
        }
        if (m.id === newest || keptForDependents(m)) continue;
        assert.ok(TERMINAL_STATUSES.includes(m.status), `model bug: purging a ${m.status} task`);
        model.tasks.delete(m.id);
        model.purged.add(m.id);
        expected++;
      }
      assert.equal(n, expected, "purge count");
      return;
    }
  }
}

function requeueModel(m: ModelTask, now: number, event: "requeue" | "requeue_waiting" = "requeue"): void {
  move(m, event);
  m.attempts = 0;
  m.runAfter = now;
  m.finishedAt = null;
}

// ---------------------------------------------------------------------------------------------------------
// Invariants

/** The fields the model predicts, as the store reports them. */
function pick(task: Task) {
  return {
    id: task.id,
    type: task.type,
    queue: task.queue,
    status: task.status,
    priority: task.priority,
    attempts: task.attempts,
    maxAttempts: task.maxAttempts,
    runAfter: task.runAfter,
    leaseUntil: task.leaseUntil,
    lockedBy: task.lockedBy,
    errorMessage: task.errorMessage,
    startedAt: task.startedAt,
    finishedAt: task.finishedAt,
    result: task.result,
    progress: task.progress,
  };
}

function pickModel(m: ModelTask): ReturnType<typeof pick> {
  const { leaseToken: _, unconfirmedStart: _unconfirmed, deps: _deps, ...rest } = m;
  return { ...rest };
}

async function checkInvariants(
  store: Store,
  inspect: StoreContext["inspect"],
  model: Model,
  where: string,
): Promise<void> {
  const tasks = (await store.taskList({ limit: 1000, offset: 0 })).sort((a, b) => a.id - b.id);
  const tokens = await inspect.leaseTokens();

  // No task is lost: the ids are exactly those enqueued minus those purged on purpose.
  const expectedIds = model.enqueued.filter((id) => !model.purged.has(id));
  assert.deepEqual(tasks.map((t) => t.id), expectedIds, `${where}: task ids`);

  for (const task of tasks) {
    const at = `${where}: task ${task.id}`;
    assert.ok(TASK_STATUSES.includes(task.status), `${at}: status ${task.status}`);
    const running = task.status === "running";
    const token = tokens.get(task.id) ?? null;
    assert.equal(token !== null, running, `${at}: a lease token exactly while running`);
    assert.equal(task.leaseUntil !== null, running, `${at}: leaseUntil set exactly while running`);
    assert.ok(task.attempts >= 0, `${at}: attempts ${task.attempts} < 0`);
    // Workers retry only while attempts remain, requeues reset to 0 and releases give one back, so no
    // sequence of operations pushes a task past its limit.
    assert.ok(task.attempts <= task.maxAttempts, `${at}: attempts ${task.attempts} > ${task.maxAttempts}`);
    const terminal = TERMINAL_STATUSES.includes(task.status);
    assert.equal(task.finishedAt !== null, terminal, `${at}: finishedAt set exactly when terminal`);
    assert.equal(token, model.tasks.get(task.id)?.leaseToken, `${at}: lease token`);
  }
  // A waiting task waits on something that may still complete, and on nothing that never will.
  for (const m of model.tasks.values()) {
    if (m.status !== "waiting") continue;
    const deps = m.deps.flatMap((dep) => model.tasks.get(dep) ?? []);
    assert.ok(deps.some((dep) => dep.status !== "completed"), `${where}: task ${m.id} waits on nothing`);
    assert.ok(
      deps.every((dep) => dep.status !== "failed" && dep.status !== "cancelled"),
      `${where}: task ${m.id} waits on a task that ended without completing`,
    );
  }

  assert.deepEqual(
    tasks.map(pick),
    [...model.tasks.values()].map(pickModel).sort((a, b) => a.id - b.id),
    `${where}: every task as the model predicts`,
  );
}

async function runProgram(ctx: StoreContext, ops: Op[]): Promise<void> {
  const { store, inspect, close } = await ctx.fresh();
  try {
    const model = new Model();
    for (const [i, op] of ops.entries()) {
      await apply(store, model, op);
      await checkInvariants(store, inspect, model, `after step ${i} ${JSON.stringify(op)}`);
    }
  } finally {
    await close();
  }
}

// ---------------------------------------------------------------------------------------------------------

describeEachStore("the task state machine", (it) => {
  it("random interleavings of claims, outcomes, leases, reaps and operator actions match the model", async (ctx) => {
    await fc.assert(
      fc.asyncProperty(programArb, (ops) => runProgram(ctx, ops)),
      { numRuns: NUM_RUNS },
    );
  });
});
