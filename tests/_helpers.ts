/**
 * Shared test helpers: a fresh database file in its own temporary folder (with a queue on a manual clock, if
 * asked), waiting on events, servers that misbehave on purpose, and the assertions several test files make
 * on a command's output.
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer, type ServerResponse } from "node:http";
import { type AddressInfo, createServer, type Server as NetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  type HandlerContext,
  ManualClock,
  Queue,
  QueueDatabase,
  type QueueDatabaseOptions,
  type Task,
} from "../mod.ts";
import { MIGRATIONS } from "../src/store/sqlite/migrations.ts";
import type { Finish, Store } from "../src/store/store.ts";

/** The repository's folder, ending in a slash. */
export const REPO = fileURLToPath(new URL("..", import.meta.url));

/** The schema version a database is migrated to. */
export const LATEST_SCHEMA = MIGRATIONS[MIGRATIONS.length - 1].version;

/** A new empty folder under the system's temporary folder; removed by the returned function. */
export function makeTempDir(prefix = "prismq-test-"): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A migrated database in a real file, opened with `options`, closed and deleted when `fn` settles. */
export async function withDb<T>(
  fn: (db: QueueDatabase, path: string) => T | Promise<T>,
  options: QueueDatabaseOptions = {},
): Promise<T> {
  const { dir, remove } = makeTempDir();
  const path = join(dir, "queue.db");
  const db = new QueueDatabase(path, options);
  try {
    await db.initializeSchema();
    return await fn(db, path);
  } finally {
    await db.close();
    remove();
  }
}

/** The instant a test's ManualClock starts at, so that the times it expects are exact. */
export const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);

/** What {@link withQueueAtT0} gives a test. */
export interface QueueAtT0 {
  db: QueueDatabase;
  /** Stands at {@link T0} until the test moves it. */
  clock: ManualClock;
  /** A queue on `db` that reads `clock`. */
  queue: Queue;
}

/** A migrated database as {@link withDb} gives it, a ManualClock at {@link T0}, and a Queue on that clock. */
export function withQueueAtT0<T>(fn: (setup: QueueAtT0) => T | Promise<T>): Promise<T> {
  return withDb((db) => {
    const clock = new ManualClock(T0);
    return fn({ db, clock, queue: new Queue(db, { clock }) });
  });
}

/** Resolves after `ms` milliseconds. Tests wait on events, not time; this is for the few that must. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` until it returns true, failing after `timeoutMs`: a hang guard, far longer by default than
 * anything a test waits for takes on a loaded machine, and measured on the monotonic clock.
 */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
  what = "condition",
) {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`);
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
  "progress",
  "queue",
  "result",
  "retryPolicy",
  "runAfter",
  "startedAt",
  "status",
  "timeoutMs",
  "type",
  "uniqueForMs",
  "uniqueKey",
  "updatedAt",
];

/**
 * JSON payloads of every kind: objects, arrays, strings, numbers, `null` and booleans, with characters that
 * are easy to get wrong in text and the largest integers a number holds exactly.
 */
export const JSON_PAYLOADS: readonly unknown[] = [
  {},
  { text: 'quote " backslash \\ newline \n tab \t é 😀 \u2028 \u0000 end' },
  [1, [2, [3, { deep: [null, true, false] }]]],
  "a string, not an object",
  "",
  42,
  -0.000123,
  1.5e300,
  9007199254740991,
  -9007199254740991,
  null,
  true,
  { 'key with "quotes"': "value", "": "empty key", nested: { a: { b: { c: "d" } } } },
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
    retryPolicy: null,
    result: null,
    progress: null,
    queue: "default",
    uniqueKey: null,
    uniqueForMs: null,
    ...fields,
    payload,
  };
}

/** A handler context for calling a `handle` by hand; `db` is for handlers that use the database. */
export function handContext(fields: Partial<HandlerContext> = {}): HandlerContext {
  return {
    signal: new AbortController().signal,
    heartbeat: () => Promise.resolve(),
    progress: () => Promise.resolve(),
    log: () => Promise.resolve(),
    workerId: "test-worker",
    attempt: 1,
    // Handlers called without a database must not touch it.
    db: null as never,
    ...fields,
  };
}

/** Whether `promise` has settled, as seen once the event loop has turned. */
export function track(promise: Promise<unknown>): () => boolean {
  let settled = false;
  promise.then(() => (settled = true), () => (settled = true));
  return () => settled;
}

/** Resolves once `signal` has aborted (at once if it has). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** Exactly one line on stderr, and no stack trace; and each of `patterns` found in it. */
export function assertOneLine(stderr: string, ...patterns: RegExp[]): void {
  assert.match(stderr, /^[^\n]+\n$/, `expected exactly one line on stderr, got ${JSON.stringify(stderr)}`);
  assert.doesNotMatch(stderr, /\bat .+:\d+:\d+|\n\s+at /, "no stack trace");
  for (const pattern of patterns) assert.match(stderr, pattern);
}

/** Any terminal escape sequence. */
// deno-lint-ignore no-control-regex
export const ANY_ESCAPE = /\x1b/;

/** One JSON object per line, blank lines skipped. */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
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
export function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  return listenOnLoopback(createServer());
}

/**
 * Starts `server` on a free loopback port, keeping track of its connections: `close()` ends those still open,
 * which would otherwise keep the server from closing, and then the server.
 */
async function listenOnLoopback(
  server: NetServer | HttpServer,
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
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

/**
 * Another process holding the write lock of the database file at `path` (a `BEGIN IMMEDIATE` transaction;
 * the file is created if new) until `release()`, which resolves with that process's exit code once it has
 * committed and exited. `output()` is what it printed so far, for a failure's message.
 */
export async function holdWriteLock(
  path: string,
): Promise<{ release: () => Promise<number | null>; output: () => string }> {
  const fixture = new URL("./fixtures/hold_lock.ts", import.meta.url).pathname;
  const child = spawn(process.execPath, ["run", "-A", fixture, path], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (chunk) => (out += chunk));
  child.stderr!.on("data", (chunk) => (out += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  let gone = false;
  void exited.then(() => (gone = true));
  await waitFor(() => out.includes("locked") || gone, 20_000, "the lock holder");
  if (!out.includes("locked")) throw new Error(`The lock holder exited without the lock: ${out}`);
  return {
    release() {
      child.stdin!.end();
      // Bounded, so that a wedged holder fails the test instead of hanging it.
      return within(30_000, "the lock holder to commit and exit", exited).catch((error) => {
        child.kill("SIGKILL");
        throw error;
      });
    },
    output: () => out,
  };
}

/** An HTTP server on loopback whose requests wait for the test to answer them; see {@link heldRequests}. */
export interface HeldRequests {
  /** The server's address, for an `http_request` task's `url`. */
  url: string;
  /** How many requests have arrived so far. */
  readonly arrived: number;
  /** Answers 200 to every request waiting now. */
  answer(): void;
  /** From now on answers 200 to each new request as it arrives; those waiting now keep waiting. */
  answerNew(): void;
  /** Ends the connections still open, and the server. */
  close(): Promise<void>;
}

/**
 * An HTTP server on loopback for `http_request` tasks whose requests are answered only when the test says
 * so: a handler of a real worker process then runs exactly as long as the test decides, however fast or
 * slowly the machine runs it.
 */
export async function heldRequests(): Promise<HeldRequests> {
  const waiting: ServerResponse[] = [];
  let arrived = 0;
  let answerAtOnce = false;
  const ok = (response: ServerResponse) =>
    response.writeHead(200, { "content-type": "text/plain" }).end("ok");
  const server = createHttpServer((request, response) => {
    request.resume();
    request.on("end", () => {
      arrived++;
      if (answerAtOnce) ok(response);
      else waiting.push(response);
    });
  });
  // Requests still waiting hold their connections open: close() ends them, or it would wait forever.
  const { port, close } = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}/`,
    get arrived() {
      return arrived;
    },
    answer: () => {
      for (const response of waiting.splice(0)) ok(response);
    },
    answerNew: () => void (answerAtOnce = true),
    close,
  };
}
