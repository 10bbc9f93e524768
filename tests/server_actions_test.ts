/**
 * The HTTP API's actions, against a real server on 127.0.0.1 over a SQLite file and a PostgreSQL database:
 * enqueue (checked as `prismq enqueue` checks), batches all or nothing, cancel, retry, delete, bulk retry,
 * purge, and queues' pause, resume and limits. Each refusal leaves the database as it was.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Task } from "../mod.ts";
import { PROCESS_DATABASES } from "./_databases.ts";
import { json, withServer } from "./_server.ts";

type Failure = { error: { code: string; message: string } };

for (const database of PROCESS_DATABASES) {
  describe(`the API's actions on ${database.name}`, { skip: database.skip }, () => {
    it("enqueue: 201 with the task; a taken idempotency key gives the existing task with 200", async () => {
      await withServer(database, async ({ api, queue }) => {
        const body = {
          type: "email",
          payload: { to: "ada@example.com" },
          priority: 5,
          queue: "mail",
          delayMs: 60_000,
          maxAttempts: 2,
          timeoutMs: 1000,
          idempotencyKey: "k-1",
        };
        const first = await json<{ task: Task; created: boolean }>(
          await api("/api/tasks", { method: "POST", json: body }),
          201,
        );
        assert.equal(first.created, true);
        assert.deepEqual(first.task, await queue.get(first.task.id));
        assert.deepEqual(
          [first.task.priority, first.task.queue, first.task.maxAttempts, first.task.timeoutMs],
          [5, "mail", 2, 1000],
        );
        assert.ok(first.task.runAfter >= first.task.createdAt + 60_000);
        const again = await json<{ task: Task; created: boolean }>(
          await api("/api/tasks", { method: "POST", json: body }),
          200,
        );
        assert.deepEqual([again.created, again.task.id], [false, first.task.id]);
        assert.equal((await queue.list()).length, 1);
      });
    });

    it("enqueue refuses what prismq enqueue refuses, with the same codes, and writes nothing", async () => {
      await withServer(database, async ({ api, queue }) => {
        const cases: [unknown, number, string, RegExp][] = [
          [
            { type: "nope" },
            400,
            "HANDLER_NOT_REGISTERED",
            /No handler registered for task type 'nope'. Registered types: \['email', 'work'\]/,
          ],
          [{ type: "email", payload: { to: "not an address" } }, 400, "PAYLOAD_INVALID", /email/],
          [{ type: "work", colour: "red" }, 400, "INVALID_ARGUMENT", /unknown field 'colour'/],
          [{ payload: {} }, 400, "INVALID_ARGUMENT", /missing field 'type'/],
          [{ type: "work", priority: "high" }, 400, "INVALID_ARGUMENT", /priority/],
          [{ type: "work", priority: 1.5 }, 400, "INVALID_ARGUMENT", /priority/],
          [
            { type: "work", delayMs: 1, runAt: "2030-01-01T00:00:00Z" },
            400,
            "INVALID_ARGUMENT",
            /runAt or delayMs, not both/,
          ],
          [{ type: "work", runAt: "tomorrow" }, 400, "INVALID_ARGUMENT", /runAt must be/],
          [{ type: "work", queue: "bad name" }, 400, "INVALID_ARGUMENT", /queue/],
          [{ type: "work", payload: { big: "x".repeat(600_000) } }, 413, "PAYLOAD_TOO_LARGE", /500000/],
          [[1, 2], 400, "INVALID_ARGUMENT", /must be a JSON object/],
        ];
        for (const [body, status, code, words] of cases) {
          const error = await json<Failure>(await api("/api/tasks", { method: "POST", json: body }), status);
          assert.equal(error.error.code, code, JSON.stringify(body).slice(0, 80));
          assert.match(error.error.message, words);
        }
        const inexact = await json<Failure>(
          await api("/api/tasks", {
            method: "POST",
            body: '{"type": "work", "payload": {"id": 12345678901234567890}}',
            headers: { "content-type": "application/json" },
          }),
          400,
        );
        assert.match(inexact.error.message, /12345678901234567890/);
        assert.deepEqual(await queue.list(), []);
      });
    });

    it("a batch goes in whole, or not at all when one task is refused, naming it", async () => {
      await withServer(database, async ({ api, queue }) => {
        const good = { type: "work", payload: { n: 1 } };
        const refused = await json<Failure>(
          await api("/api/tasks/batch", {
            method: "POST",
            json: { tasks: [good, { type: "email", payload: {} }] },
          }),
          400,
        );
        assert.match(refused.error.message, /^Task 2: /);
        const shape = await json<Failure>(
          await api("/api/tasks/batch", { method: "POST", json: { tasks: [good, { type: "work", x: 1 }] } }),
          400,
        );
        assert.match(shape.error.message, /^Task 2: unknown field 'x'/);
        for (const body of [{ tasks: [] }, { tasks: "x" }, { jobs: [good] }]) {
          assert.equal((await api("/api/tasks/batch", { method: "POST", json: body })).status, 400);
        }
        assert.deepEqual(await queue.list(), []);
        const done = await json<{ tasks: Task[]; created: boolean[] }>(
          await api("/api/tasks/batch", {
            method: "POST",
            json: { tasks: [good, { ...good, idempotencyKey: "b" }, { ...good, idempotencyKey: "b" }] },
          }),
          201,
        );
        assert.deepEqual(done.created, [true, true, false]);
        assert.equal(done.tasks[1]!.id, done.tasks[2]!.id);
        assert.equal((await queue.list()).length, 2);
      });
    });

    it("cancel, retry and delete one task; 409 when its status does not allow it, 404 when it is gone", async () => {
      await withServer(database, async ({ api, queue }) => {
        const task = await queue.enqueue("work", {});
        const newer = await queue.enqueue("work", {});
        const cancelled = await json<Task>(await api(`/api/tasks/${task.id}/cancel`, { method: "POST" }));
        assert.equal(cancelled.status, "cancelled");
        const twice = await json<Failure>(await api(`/api/tasks/${task.id}/cancel`, { method: "POST" }), 409);
        assert.equal(twice.error.code, "TASK_STATE_CONFLICT");
        const retried = await json<Task>(await api(`/api/tasks/${task.id}/retry`, { method: "POST" }));
        assert.deepEqual([retried.status, retried.attempts], ["queued", 0]);
        assert.equal((await api(`/api/tasks/${task.id}/retry`, { method: "POST" })).status, 409);
        const queuedDelete = await json<Failure>(
          await api(`/api/tasks/${task.id}`, { method: "DELETE" }),
          409,
        );
        assert.match(queuedDelete.error.message, /can be deleted/);
        await queue.cancel(task.id);
        const deleted = await api(`/api/tasks/${task.id}`, { method: "DELETE" });
        assert.equal(deleted.status, 204);
        assert.equal(await deleted.text(), "");
        assert.equal(await queue.get(task.id), undefined);
        assert.equal((await api(`/api/tasks/${task.id}`, { method: "DELETE" })).status, 404);
        assert.equal((await api(`/api/tasks/${task.id}/cancel`, { method: "POST" })).status, 404);
        await queue.cancel(newer.id);
        const newest = await json<Failure>(await api(`/api/tasks/${newer.id}`, { method: "DELETE" }), 409);
        assert.equal(newest.error.code, "TASK_NEWEST_KEPT");
        assert.equal((await queue.get(newer.id))?.status, "cancelled");
      });
    });

    it("bulk retry by status, type and queue; purge by status and age", async () => {
      await withServer(database, async ({ api, queue }) => {
        const tasks = await queue.enqueueMany([
          { type: "work", queue: "a" },
          { type: "work", queue: "b" },
          { type: "email", payload: { to: "ada@example.com" }, queue: "a" },
          { type: "work" },
        ]);
        for (const task of tasks.slice(0, 3)) await queue.cancel(task.id);
        const retry = (body: unknown) => api("/api/tasks/retry", { method: "POST", json: body });
        assert.deepEqual(await json(await retry({})), { retried: 0 }, "failed by default: none");
        assert.deepEqual(await json(await retry({ status: "cancelled", type: "work", queue: "a" })), {
          retried: 1,
        });
        assert.deepEqual(await json(await retry({ status: "cancelled" })), { retried: 2 });
        assert.equal(
          (await json<Failure>(await retry({ status: "queued" }), 400)).error.code,
          "INVALID_ARGUMENT",
        );
        assert.equal((await retry({ status: "failed", typo: 1 })).status, 400);
        assert.equal((await retry({ status: "failed", queue: "bad name" })).status, 400);

        for (const task of tasks.slice(0, 3)) await queue.cancel(task.id);
        const purge = (body: unknown) => api("/api/purge", { method: "POST", json: body });
        assert.equal((await purge({ statuses: ["cancelled"] })).status, 400, "olderThanMs is required");
        assert.equal((await purge({ olderThanMs: 0 })).status, 400, "statuses are required");
        assert.equal((await purge({ statuses: ["queued"], olderThanMs: 0 })).status, 400);
        assert.deepEqual(await json(await purge({ statuses: ["cancelled"], olderThanMs: 3_600_000 })), {
          deleted: 0,
        });
        assert.equal((await queue.list()).length, 4);
        assert.deepEqual(await json(await purge({ statuses: ["cancelled", "completed"], olderThanMs: 0 })), {
          deleted: 3,
        });
        assert.deepEqual((await queue.list()).map((task) => task.id), [tasks[3]!.id]);
      });
    });

    it("queues: pause, resume, and limits set and removed", async () => {
      await withServer(database, async ({ api, queue }) => {
        const paused = await json(await api("/api/queues/mail/pause", { method: "POST" }));
        assert.deepEqual(paused, { name: "mail", concurrency: null, rate: null, paused: true });
        assert.equal((await queue.listQueues()).find((q) => q.name === "mail")?.paused, true);
        const limited = await json(
          await api("/api/queues/mail", { method: "PUT", json: { concurrency: 3, rate: "10/2m" } }),
        );
        assert.deepEqual(limited, { name: "mail", concurrency: 3, rate: "10/2m", paused: true });
        const resumed = await json(await api("/api/queues/mail/resume", { method: "POST" }));
        assert.deepEqual(resumed, { name: "mail", concurrency: 3, rate: "10/2m", paused: false });
        const cleared = await json(await api("/api/queues/mail", { method: "PUT", json: { rate: null } }));
        assert.deepEqual(cleared, { name: "mail", concurrency: 3, rate: null, paused: false });
        for (const body of [{ concurrency: 0 }, { rate: "fast" }, { rate: 5 }, { speed: 1 }]) {
          assert.equal(
            (await api("/api/queues/mail", { method: "PUT", json: body })).status,
            400,
            JSON.stringify(body),
          );
        }
        assert.equal((await api("/api/queues/bad%20name/pause", { method: "POST" })).status, 400);
        assert.deepEqual(
          (await queue.listQueues()).map(({ name, concurrency, rate, paused }) => ({
            name,
            concurrency,
            rate,
            paused,
          })),
          [{ name: "mail", concurrency: 3, rate: null, paused: false }],
        );
      });
    });
  });
}
