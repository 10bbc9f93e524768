/**
 * The HTTP API's reads, against a real server on 127.0.0.1 over a SQLite file and a PostgreSQL database:
 * statistics, workers, queues, schedules, one task, its logs, and the list with every filter and keyset
 * paging.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Task, WorkerEngine } from "../mod.ts";
import { PROCESS_DATABASES } from "./_databases.ts";
import { json, READ_TOKEN, testRegistry, withServer } from "./_server.ts";
import { scanPage } from "../src/server/list_scan.ts";

type Page = { tasks: Task[]; next: string | null };

for (const database of PROCESS_DATABASES) {
  describe(`the API's reads on ${database.name}`, { skip: database.skip }, () => {
    it("stats, workers, queues and schedules answer with what the database holds", async () => {
      await withServer(database, async ({ api, queue, db }) => {
        await queue.enqueue("email", { to: "ada@example.com" }, { queue: "mail" });
        await queue.enqueue("work", {});
        await queue.setQueueLimits("mail", { concurrency: 2, rate: { limit: 100, intervalMs: 1000 } });
        const worker = new WorkerEngine({
          db,
          workerId: "w-1",
          handlerRegistry: testRegistry(),
          types: ["work"],
        });
        await worker.runLoop({ untilEmpty: true });

        const stats = await json(await api("/api/stats"));
        assert.deepEqual(stats.counts, {
          waiting: 0,
          queued: 1,
          running: 0,
          completed: 1,
          failed: 0,
          cancelled: 0,
        });
        assert.equal((stats.byType as Record<string, Record<string, number>>).email!.queued, 1);
        assert.equal(typeof stats.oldestQueuedAgeMs, "number");
        const mail = (stats.queues as Record<string, unknown>[]).find((q) => q.name === "mail");
        assert.deepEqual([mail?.queued, mail?.concurrency, mail?.rate], [1, 2, "100/s"]);

        const { queues } = await json<{ queues: Record<string, unknown>[] }>(await api("/api/queues"));
        assert.deepEqual(queues.map((q) => q.name).sort(), ["mail"]);

        const { workers } = await json<{ workers: Record<string, unknown>[] }>(await api("/api/workers"));
        assert.ok(Array.isArray(workers));

        const { schedules } = await json<{ schedules: unknown[] }>(await api("/api/schedules"));
        assert.deepEqual(schedules, []);
      });
    });

    it("one task, field for field as the queue has it, and its logs; 404 for none, 400 for a bad id", async () => {
      await withServer(database, async ({ api, queue }) => {
        const task = await queue.enqueue("work", { n: 1, text: "<script>alert(1)</script>" });
        const got = await json<Task>(
          await api(`/api/tasks/${task.id}`, { headers: { authorization: `Bearer ${READ_TOKEN}` } }),
        );
        assert.deepEqual(got, { ...await queue.get(task.id), dependsOn: [], dependents: [] });
        assert.deepEqual(await json(await api(`/api/tasks/${task.id}/logs`)), { logs: [] });
        const after = await queue.enqueue("work", {}, { dependsOn: [task.id] });
        const dependent = await json<Task & { dependsOn: number[] }>(await api(`/api/tasks/${after.id}`));
        assert.deepEqual(dependent.dependsOn, [task.id]);
        const first = await json<Task & { dependents: number[] }>(await api(`/api/tasks/${task.id}`));
        assert.deepEqual(first.dependents, [after.id]);
        const missing = await json<{ error: { code: string } }>(
          await api(`/api/tasks/${task.id + 1000}`),
          404,
        );
        assert.equal(missing.error.code, "TASK_NOT_FOUND");
        assert.equal((await api(`/api/tasks/${task.id + 1000}/logs`)).status, 404);
        for (const bad of ["0", "-1", "abc", "1.5", "99999999999999999"]) {
          const error = await json<{ error: { code: string } }>(await api(`/api/tasks/${bad}`), 400);
          assert.equal(error.error.code, "INVALID_ARGUMENT");
        }
      });
    });

    it("the list filters by status, type, queue, creation time and payload fields", async () => {
      await withServer(database, async ({ api, queue }) => {
        const a = await queue.enqueue("work", { account: 42, user: { name: "ada" } });
        const b = await queue.enqueue("work", { account: "42" }, { queue: "other" });
        const c = await queue.enqueue("email", { to: "bob@example.com" });
        await queue.cancel(c.id);
        const ids = async (query: string) =>
          (await json<Page>(await api(`/api/tasks${query}`))).tasks.map((task) => task.id);
        assert.deepEqual(await ids(""), [c.id, b.id, a.id]);
        assert.deepEqual(await ids("?status=cancelled"), [c.id]);
        assert.deepEqual(await ids("?type=work"), [b.id, a.id]);
        assert.deepEqual(await ids("?queue=other"), [b.id]);
        assert.deepEqual(await ids("?payload.account=42"), [a.id], "the number 42");
        assert.deepEqual(await ids("?payload.account=%2242%22"), [b.id], 'the string "42"');
        assert.deepEqual(await ids("?payload.user.name=ada"), [a.id]);
        assert.deepEqual(await ids("?payload.user.name=ada&type=email"), []);
        assert.deepEqual(await ids(`?createdAfter=${a.createdAt - 1}&createdBefore=${c.createdAt + 1}`), [
          c.id,
          b.id,
          a.id,
        ]);
        assert.deepEqual(await ids(`?createdAfter=${new Date(c.createdAt + 1).toISOString()}`), []);

        for (
          const [query, words] of [
            ["?status=done", /Unknown status 'done'/],
            ["?limit=0", /limit must be a whole number from 1 to 500/],
            ["?limit=501", /limit must be/],
            ["?cursor=abc", /not one this server gave/],
            ["?colour=red", /Unknown query parameter 'colour'/],
            ["?type=a&type=b", /given twice/],
            ["?payload.a-b=1", /payload field "a-b"/],
            ["?payload.a={}", /matches a string, a number/],
            ["?createdAfter=yesterday", /createdAfter must be/],
            ["?queue=no%20spaces", /queue/i],
          ] as const
        ) {
          const error = await json<{ error: { code: string; message: string } }>(
            await api(`/api/tasks${query}`),
            400,
          );
          assert.equal(error.error.code, "INVALID_ARGUMENT", query);
          assert.match(error.error.message, words, query);
        }
      });
    });

    it("keyset paging walks a few thousand tasks, newest first, each once, under a filter too", async () => {
      await withServer(database, async ({ api, queue }) => {
        const items = Array.from({ length: 3000 }, (_, i) => ({
          type: "work",
          payload: { account: i % 3, i },
        }));
        const created = await queue.enqueueMany(items);
        const walk = async (query: string, limit: number) => {
          const seen: number[] = [];
          let cursor: string | null = null;
          let pages = 0;
          do {
            const page: Page = await json<Page>(
              await api(`/api/tasks?limit=${limit}${query}${cursor ? `&cursor=${cursor}` : ""}`),
            );
            seen.push(...page.tasks.map((task) => task.id));
            cursor = page.next;
            pages++;
          } while (cursor !== null && pages < 1000);
          return { seen, pages };
        };
        const all = await walk("", 500);
        assert.deepEqual(all.seen, created.map((task) => task.id).reverse());
        assert.equal(
          all.pages,
          6,
          "3000 tasks in pages of 500: the last page full, and no empty page after it",
        );
        const twos = await walk("&payload.account=2", 333);
        assert.deepEqual(
          twos.seen,
          created.filter((task) => (task.payload as { account: number }).account === 2).map((t) => t.id)
            .reverse(),
        );
        assert.equal(twos.pages, 4);
      });
    });
  });
}

describe("a page's scan is bounded", () => {
  it("a rare filter gives short or empty pages whose next goes on below what was looked at; every match once", async () => {
    await withServer(PROCESS_DATABASES[0]!, async ({ queue }) => {
      const created = await queue.enqueueMany(
        Array.from({ length: 1000 }, (_, i) => ({ type: "work", payload: { rare: i % 150 === 7 } })),
      );
      const bounds = { window: 100, maxScanned: 300 };
      const filter = { payload: [{ path: ["rare"], value: true }], limit: 2 };
      const seen: number[] = [];
      const sizes: number[] = [];
      let cursor: number | undefined;
      for (let requests = 0; requests < 100; requests++) {
        const page = await scanPage(queue, { ...filter, beforeId: cursor }, bounds);
        seen.push(...page.tasks.map((task) => task.id));
        sizes.push(page.tasks.length);
        if (page.next === null) break;
        cursor = Number(page.next);
      }
      const expected = created.filter((_, i) => i % 150 === 7).map((task) => task.id).reverse();
      assert.deepEqual(seen, expected);
      assert.ok(sizes.some((size) => size < 2), `some pages came back short: ${sizes}`);
      assert.ok(sizes.length <= Math.ceil(1000 / 300) + expected.length, `${sizes.length} requests`);
      // A common filter fills its page from the first window.
      const common = await scanPage(queue, { type: "work", limit: 50 }, bounds);
      assert.equal(common.tasks.length, 50);
      assert.equal(common.next, String(common.tasks[49]!.id));
    });
  });
});
