/**
 * Shared test fixtures: a fresh database file in its own temporary folder.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type HandlerContext, QueueDatabase, type Task } from "../mod.ts";
import type { Finish, Store } from "../src/store/store.ts";

/** A new empty folder under the system's temporary folder; removed by the returned function. */
export function makeTempDir(prefix = "prismq-test-"): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A migrated database in a real file, closed and deleted when `fn` settles. */
export async function withDb<T>(fn: (db: QueueDatabase, path: string) => T | Promise<T>): Promise<T> {
  const { dir, remove } = makeTempDir();
  const path = join(dir, "queue.db");
  const db = new QueueDatabase(path);
  try {
    await db.initializeSchema();
    return await fn(db, path);
  } finally {
    db.close();
    remove();
  }
}

/** Resolves after `ms` milliseconds. Tests wait on events, not time; this is for the few that must. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns true, failing after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = "condition",
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`);
    await delay(5);
  }
}

/** Every field of a Task, sorted: the shape `--json` and the API must return. */
export const TASK_FIELDS = [
  "attempts",
  "createdAt",
  "errorMessage",
  "finishedAt",
  "id",
  "idempotencyKey",
  "leaseUntil",
  "lockedBy",
  "maxAttempts",
  "payload",
  "priority",
  "runAfter",
  "startedAt",
  "status",
  "timeoutMs",
  "type",
  "updatedAt",
];

/** A running task as a worker passes it to a handler, for calling a `handle` directly. */
export function runningTask<P>(payload: P, fields: Partial<Task> = {}): Task<P> {
  return {
    id: 1,
    type: "test_task",
    status: "running",
    priority: 100,
    attempts: 1,
    maxAttempts: 5,
    errorMessage: null,
    idempotencyKey: null,
    lockedBy: "test-worker",
    timeoutMs: null,
    runAfter: 0,
    leaseUntil: 60_000,
    createdAt: 0,
    updatedAt: 0,
    startedAt: 0,
    finishedAt: null,
    ...fields,
    payload,
  };
}

/** A handler context for calling a `handle` by hand; `db` is for handlers that use the database. */
export function handContext(fields: Partial<HandlerContext> = {}): HandlerContext {
  return {
    signal: new AbortController().signal,
    heartbeat: () => Promise.resolve(),
    log: () => Promise.resolve(),
    workerId: "test-worker",
    attempt: 1,
    // Handlers called without a database must not touch it.
    db: null as never,
    ...fields,
  };
}

/** Awaits `promise` and returns what it rejected with, failing when it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the promise to reject");
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

/** A promise and the function that resolves it, for a test to wait on something another part does. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A local port that was free a moment ago, so that nothing answers on it. */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Records outcomes through the store, as a worker's grouped write does; gives the ids whose fence held. */
export async function finishMany(
  store: Store,
  finishes: readonly Finish[],
  now: number,
): Promise<Set<number>> {
  return (await store.taskRecord({ starts: [], finishes }, now)).finished;
}

/**
 * A TCP server on loopback that accepts every connection and never answers: what a hung or overloaded
 * server looks like from the client.
 */
export async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<import("node:net").Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.on("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** `promise`, or a failure naming `what` once `ms` have passed: a test that would hang fails instead. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
