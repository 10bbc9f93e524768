/**
 * `prismq serve` and `prismq run --serve` as real processes (from source, or the compiled binary): started,
 * asked over HTTP on 127.0.0.1, and stopped with SIGTERM. Written once, for `server_process_test.ts` and
 * `server_binary_test.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import process from "node:process";
import type { Task } from "../mod.ts";
import type { Proc } from "./_binary.ts";
import type { ProcessDatabase } from "./_databases.ts";
import { makeTempDir, waitFor } from "./_helpers.ts";

export const ADMIN = "serve-admin-token-0123456789";
export const READER = "serve-read-token-0123456789";

/** Starts `prismq <args>` in `cwd` with these extra environment variables. */
export type Runner = (cwd: string, args: string[], env?: Record<string, string>) => Proc;

/** The URL the process prints once it listens, waited for with a deadline. */
async function urlOf(proc: Proc): Promise<string> {
  let url: string | undefined;
  await waitFor(
    () => {
      url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(proc.stdout)?.[1];
      return url !== undefined || proc.child.exitCode !== null;
    },
    60_000,
    "the server to listen",
  );
  assert.ok(url, `it printed no URL: ${proc.stdout}${proc.stderr}`);
  return url;
}

/**
 * `prismq serve` on a database: enqueues over HTTP (a batch, with the linked registry's refusal of an
 * unknown type), a `prismq run --until-empty` process drains it, the API shows them completed, and SIGTERM
 * stops the server, exit 0.
 */
export async function serveAndDrain(run: Runner, database: ProcessDatabase): Promise<void> {
  const { dir, remove } = makeTempDir("prismq-serve-");
  const { location, drop } = await database.create(dir);
  const tokens = { PRISMQ_ADMIN_TOKENS: ADMIN, PRISMQ_READ_TOKENS: READER };
  const server = run(dir, ["serve", "--listen", "127.0.0.1:0", "--db", location, "--json"], tokens);
  try {
    const url = await urlOf(server);
    const call = (path: string, init: RequestInit = {}, token = ADMIN) =>
      fetch(url + path, {
        ...init,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      });
    const unknown = await call("/api/tasks", { method: "POST", body: '{"type": "nope"}' });
    assert.equal(unknown.status, 400);
    const refusal = await unknown.json() as { error: { code: string; message: string } };
    assert.equal(refusal.error.code, "HANDLER_NOT_REGISTERED");
    assert.match(refusal.error.message, /Registered types: \[.*'noop'.*\]/);
    const read = await call("/api/tasks", { method: "POST", body: '{"type": "noop"}' }, READER);
    assert.equal(read.status, 403);
    await read.body?.cancel();

    const tasks = Array.from({ length: 40 }, (_, i) => ({ type: "noop", payload: {}, priority: i % 3 }));
    const batch = await call("/api/tasks/batch", { method: "POST", body: JSON.stringify({ tasks }) });
    assert.equal(batch.status, 201, await batch.clone().text());
    const created = (await batch.json() as { tasks: Task[] }).tasks;

    const worker = await run(dir, ["run", "--until-empty", "--db", location]).done;
    assert.equal(worker.code, 0, worker.stderr);

    const listed = await call("/api/tasks?status=completed&limit=100", {}, READER);
    const page = await listed.json() as { tasks: Task[]; next: string | null };
    assert.deepEqual(page.tasks.map((t) => t.id).sort((a, b) => a - b), created.map((t) => t.id));
    assert.equal(page.next, null);
    const stats = await (await call("/api/stats", {}, READER)).json() as { counts: Record<string, number> };
    assert.equal(stats.counts.completed, 40);

    // process.kill: Deno's child.kill reports its signal as the cause of exit, even of a graceful one.
    process.kill(server.child.pid!, "SIGTERM");
    const exit = await server.done;
    assert.equal(exit.code, 0, exit.stderr);
    const events = exit.stdout.trim().split("\n").map((line) => JSON.parse(line).event);
    assert.deepEqual(events, ["listening", "stopping", "stopped"]);
    assert.ok(!exit.stdout.includes(ADMIN) && !exit.stderr.includes(ADMIN), "no token in its output");
  } finally {
    if (server.child.exitCode === null) server.child.kill("SIGKILL");
    await server.done;
    await drop();
    remove();
  }
}

/**
 * `prismq run --serve`: a worker that serves the API (no token: loopback) runs a task enqueued over HTTP;
 * SIGTERM stops both, exit 0, and the port is closed after.
 */
export async function workerServes(run: Runner, database: ProcessDatabase): Promise<void> {
  const { dir, remove } = makeTempDir("prismq-run-serve-");
  const { location, drop } = await database.create(dir);
  const worker = run(dir, ["run", "--serve", "127.0.0.1:0", "--db", location, "--poll", "20ms"]);
  try {
    const url = await urlOf(worker);
    const enqueued = await fetch(`${url}/api/tasks`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"type": "noop", "payload": {"sleepMs": 1}}',
    });
    assert.equal(enqueued.status, 201);
    const { task } = await enqueued.json() as { task: Task };
    let status = "";
    await waitFor(
      async () => {
        status = (await (await fetch(`${url}/api/tasks/${task.id}`)).json() as Task).status;
        return status === "completed";
      },
      60_000,
      "the task to complete",
    );

    process.kill(worker.child.pid!, "SIGTERM");
    const exit = await worker.done;
    assert.equal(exit.code, 0, exit.stderr);
    assert.match(exit.stdout, /Serving the HTTP API on http:\/\/127\.0\.0\.1:\d+ with no token/);
    assert.match(exit.stdout, /stopped: 1 completed/);
    await assert.rejects(fetch(`${url}/api/stats`), "nothing listens once it stopped");
  } finally {
    if (worker.child.exitCode === null) worker.child.kill("SIGKILL");
    await worker.done;
    await drop();
    remove();
  }
}
