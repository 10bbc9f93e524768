/**
 * Conformance: a model-based property test of the task state machine, on every store. Random sequences of
 * enqueues, claims by a few workers, outcomes (results and snoozes among them), progress, heartbeats and
 * releases with remembered (possibly stale)
 * lease tokens, time steps, reaps, cancels, requeues and purges run against the store and a small in-memory
 * model that follows `TRANSITIONS` and the fencing rules. After every step every task must match the model
 * exactly, and the structural invariants must hold. Each run starts on a fresh store.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type ClaimStrategy,
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
// Operations

type Outcome = "completed" | "result" | "retry" | "snooze" | "failed";

type Op =
  | { kind: "enqueue"; tasks: { type: string; maxAttempts: number; priority: number; delay: number }[] }
  | { kind: "claim"; worker: number; limit: number; start: number; leaseMs: number; strategy: ClaimStrategy }
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
    }),
    weight: 5,
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
      const tasks = op.tasks.slice(0, Math.max(0, room));
      if (tasks.length === 0) return;
      const inserted = await store.taskInsertMany(
        tasks.map((t) => ({
          type: t.type,
          payload: "{}",
          priority: t.priority,
          maxAttempts: t.maxAttempts,
          runAfter: now + t.delay,
          idempotencyKey: null,
          timeoutMs: null,
          retryPolicy: null,
          queue: "default",
          uniqueKey: null,
          uniqueForMs: null,
        })),
        now,
      );
      assert.equal(inserted.length, tasks.length);
      for (const [i, { id, created, existing }] of inserted.entries()) {
        assert.equal(existing, undefined);
        assert.equal(created, true);
        assert.ok(!model.tasks.has(id), `id ${id} reused`);
        const t = tasks[i];
        const m: ModelTask = {
          id,
          type: t.type,
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
        };
        model.tasks.set(id, m);
        model.enqueued.push(id);
        const stored = await store.taskGet(id);
        assert.ok(stored, `task ${id} was not stored`);
        checkReturnedTask(stored, m, "inserted task");
      }
      return;
    }

    case "claim": {
      const workerId = WORKERS[op.worker];
      const runnable = model.runnable();
      const leased: LeasedTask[] = await store.taskClaim({
        workerId,
        limit: op.limit,
        start: op.start,
        leaseMs: op.leaseMs,
        now,
        strategy: op.strategy,
      });
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
      assert.equal(leased.length, Math.min(op.limit, runnable.length), "claim size = min(limit, runnable)");
      const runnableIds = new Set(runnable.map((t) => t.id));
      for (const id of ids) assert.ok(runnableIds.has(id), `claimed task ${id} was not runnable`);
      if (op.strategy !== "weighted_random") {
        // The first in claim order start at once.
        const expected = [...runnable].sort(claimOrder(op.strategy)).slice(0, op.limit).map((t) => t.id);
        assert.deepEqual(ids, expected, `${op.strategy} claim order`);
      }
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
      } else {
        await expectRefusal(() => store.taskCancel(id, now), model, id, `cancel ${id}`);
      }
      return;
    }

    case "requeue": {
      const id = model.idAt(op.task);
      const m = model.tasks.get(id);
      if (m && nextStatus(m.status, "requeue") !== undefined) {
        const task = await store.taskRequeue(id, now);
        requeueModel(m, now);
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
      for (const m of [...model.tasks.values()]) {
        if (!op.statuses.includes(m.status) || m.finishedAt === null || m.finishedAt >= finishedBefore) {
          continue;
        }
        if (m.id === newest) continue;
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

function requeueModel(m: ModelTask, now: number): void {
  move(m, "requeue");
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
  const { leaseToken: _, unconfirmedStart: _unconfirmed, ...rest } = m;
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
