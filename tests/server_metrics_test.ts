/**
 * The server's figures: `GET /metrics` (Prometheus text, the whole fleet's counts from the database) and
 * `GET /api/throughput` (the dashboard chart's minutes), against a real server on 127.0.0.1 over a SQLite
 * file and a PostgreSQL database, with the tokens each needs.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { WorkerEngine } from "../mod.ts";
import { PROCESS_DATABASES } from "./_databases.ts";
import { parsePrometheus, valueOf } from "./_prometheus.ts";
import { json, READ_TOKEN, testRegistry, withServer } from "./_server.ts";

for (const database of PROCESS_DATABASES) {
  describe(`the server's metrics on ${database.name}`, { skip: database.skip }, () => {
    it("GET /metrics gives what the database holds, in Prometheus's text format, to a read token", async () => {
      await withServer(database, async ({ api, queue, db }) => {
        await queue.enqueue("work", {});
        await queue.enqueue("work", {});
        await queue.enqueue("email", { to: "ada@example.com" }, { queue: "mail" });
        const worker = new WorkerEngine({
          db,
          workerId: "w-1",
          handlerRegistry: testRegistry(),
          types: ["work"],
        });
        await worker.runLoop({ untilEmpty: true });

        const response = await api("/metrics", { headers: { authorization: `Bearer ${READ_TOKEN}` } });
        assert.equal(response.status, 200);
        assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
        const parsed = parsePrometheus(await response.text());
        const work = { type: "work", queue: "default" };
        assert.equal(valueOf(parsed, "prismq_tasks_enqueued_total", work), 2);
        assert.equal(valueOf(parsed, "prismq_tasks_completed_total", work), 2);
        assert.equal(valueOf(parsed, "prismq_tasks_enqueued_total", { type: "email", queue: "mail" }), 1);
        assert.equal(valueOf(parsed, "prismq_queue_tasks", { queue: "mail", status: "queued" }), 1);
      });
    });

    it("GET /metrics and /api/throughput refuse a request without a token, and change nothing", async () => {
      await withServer(database, async ({ url, queue }) => {
        await queue.enqueue("work", {});
        for (const path of ["/metrics", "/api/throughput"]) {
          const response = await fetch(url + path);
          assert.equal(response.status, 401, path);
          assert.equal((await json<{ error: { code: string } }>(response, 401)).error.code, "UNAUTHORIZED");
        }
        assert.equal((await queue.stats()).counts.queued, 1);
      });
    });

    it("GET /api/throughput gives one entry a minute, completions counted in theirs", async () => {
      await withServer(database, async ({ api, queue, db }) => {
        await queue.enqueue("work", {});
        const worker = new WorkerEngine({
          db,
          workerId: "w-1",
          handlerRegistry: testRegistry(),
          types: ["work"],
        });
        await worker.runLoop({ untilEmpty: true });
        const minutes = await json<{ minute: number; completed: number; failed: number }[]>(
          await api("/api/throughput?minutes=5"),
        );
        assert.equal(minutes.length, 5);
        assert.deepEqual(
          minutes.map((m) => m.minute),
          minutes.map((_, i) => minutes[0]!.minute + i * 60_000),
        );
        assert.equal(minutes.reduce((sum, m) => sum + m.completed, 0), 1);
        assert.equal((await json<unknown[]>(await api("/api/throughput"))).length, 60, "an hour by default");
        for (const bad of ["0", "1441", "abc", "1.5"]) {
          const answer = await json<{ error: { code: string; message: string } }>(
            await api(`/api/throughput?minutes=${bad}`),
            400,
          );
          assert.match(answer.error.message, /minutes must be a whole number from 1 to 1440/);
        }
      });
    });
  });
}
