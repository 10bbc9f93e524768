/**
 * The commands on tasks (`src/cli/commands/tasks.ts`): list, show, retry, cancel, purge.
 *
 * The commands run as functions against an in-memory `CliIo` and a real database file.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type Task, WorkerEngine } from "../../mod.ts";
import { assertOneLine, TASK_FIELDS, waitFor } from "../_helpers.ts";
import { boom, TEST_HANDLERS, withFixture } from "./_fixture.ts";

describe("prismq list and show", () => {
  test("list filters by status and type, honours --limit and --offset, newest first", async () => {
    await withFixture(async ({ q, qJson }) => {
      const opts = { handlers: TEST_HANDLERS };
      for (let i = 0; i < 4; i++) await q(["enqueue", "noop"], opts);
      await q(["enqueue", "chatty", '{"word": "a"}'], opts);
      await q(["cancel", "2"]);

      const all = await qJson<Task[]>(["list"]);
      assert.deepEqual(all.map((t) => t.id), [5, 4, 3, 2, 1]);
      assert.deepEqual(Object.keys(all[0]).sort(), TASK_FIELDS);
      assert.deepEqual((await qJson<Task[]>(["list", "--status", "cancelled"])).map((t) => t.id), [2]);
      assert.deepEqual((await qJson<Task[]>(["list", "--type", "chatty"])).map((t) => t.id), [5]);
      assert.deepEqual(
        (await qJson<Task[]>(["list", "--type", "noop", "--status", "queued"])).map((t) => t.id),
        [4, 3, 1],
      );
      assert.deepEqual((await qJson<Task[]>(["list", "--limit", "2"])).map((t) => t.id), [5, 4]);
      assert.deepEqual((await qJson<Task[]>(["list", "--limit", "2", "--offset", "2"])).map((t) => t.id), [
        3,
        2,
      ]);
      assert.deepEqual(await qJson(["list", "--status", "failed"]), []);

      const text = await q(["list", "--limit", "2"]);
      assert.equal(text.code, 0);
      const lines = text.stdout.trimEnd().split("\n");
      assert.match(lines[0], /^ID +TYPE +STATUS +ATTEMPTS +PRIORITY +DUE +CREATED +LAST ERROR$/);
      assert.equal(lines.length, 3);
      assert.match(lines[1], /^ *5 +chatty +queued +0\/5 +100 +now +\d{4}-/);
      assert.equal((await q(["list", "--status", "failed"])).stdout, "No tasks match.\n");
    });
  });

  test("list shows when each queued task is due, marking scheduled ones and ones backing off", async () => {
    await withFixture(async ({ q, qJson, inspect }) => {
      const flaky = await qJson<Task>(["enqueue", "noop", "--max-attempts", "3"]);
      await inspect(async (_queue, db) => {
        // One failed attempt, with a backoff long enough to still be waiting when the list is printed.
        const worker = new WorkerEngine({
          db,
          workerId: "setup",
          retry: { initialDelayMs: 3_600_000, maxDelayMs: 3_600_000, jitter: 0 },
        });
        await worker.claimAndProcess(() => {
          throw new Error("not yet");
        });
      });
      const now = await qJson<Task>(["enqueue", "noop"]);
      const later = await qJson<Task>(["enqueue", "noop", "--delay", "10m"]);
      const done = await qJson<Task>(["enqueue", "noop"]);
      await q(["cancel", String(done.id)]);

      const r = await q(["list"]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split("\n");
      assert.match(lines[0], /^ID +TYPE +STATUS +ATTEMPTS +PRIORITY +DUE +CREATED +LAST ERROR$/);
      const row = (id: number) => lines.find((line) => line.trimStart().startsWith(`${id} `)) ?? "";
      assert.match(row(now.id), / queued +0\/5 +100 +now +\d{4}-/);
      assert.match(row(later.id), / queued +0\/5 +100 +in \d+ min \d+ s · scheduled +\d{4}-/);
      assert.match(
        row(flaky.id),
        / queued +1\/3 +100 +in (\d+ min \d+ s|1 h 0 min) · backing off +\d{4}-.* not yet$/,
      );
      assert.match(row(done.id), / cancelled +0\/5 +100 +- +\d{4}-/);

      const shown = await q(["show", String(flaky.id)]);
      assert.match(
        shown.stdout,
        /runnable from +\d{4}-[\d-]+T[\d:.]+Z \(in (\d+ min \d+ s|1 h 0 min), backing off\)\n/,
      );
      const scheduled = await q(["show", String(later.id)]);
      assert.match(scheduled.stdout, /runnable from +\d{4}-[\d-]+T[\d:.]+Z \(in .+, scheduled\)\n/);
    });
  });

  test("list: a bad --status, --limit or --offset exits 2", async () => {
    await withFixture(async ({ q }) => {
      const cases: [string[], RegExp][] = [
        [
          ["--status", "done"],
          /Unknown status 'done'\. Use waiting, queued, running, completed, failed, cancelled/,
        ],
        [["--limit", "0"], /--limit/],
        [["--limit", "ten"], /--limit/],
        [["--offset", "-1"], /--offset/],
        [["extra"], /Unexpected argument 'extra'/],
      ];
      for (const [flags, message] of cases) {
        const r = await q(["list", ...flags]);
        assert.equal(r.code, 2, flags.join(" "));
        assertOneLine(r.stderr, /^prismq list: /, message);
      }
    });
  });

  test("show prints a task and its log; --json includes the logs", async () => {
    await withFixture(async ({ q, qJson }) => {
      const opts = { handlers: TEST_HANDLERS };
      const task = await qJson<Task>(["enqueue", "chatty", '{"word": "hi"}', "--key", "greeting"], opts);
      await q(["run", "--until-empty"], opts);
      const shown = await qJson<Task & { logs: Record<string, unknown>[] }>(["show", String(task.id)]);
      assert.equal(shown.id, task.id);
      assert.equal(shown.status, "completed");
      assert.deepEqual(shown.payload, { word: "hi" });
      assert.deepEqual(shown.progress, { words: 1 });
      assert.deepEqual(shown.result, { said: "hi" });
      assert.equal(shown.logs.length, 1);
      assert.equal(shown.logs[0].level, "info");
      assert.equal(shown.logs[0].message, "said hi");
      assert.deepEqual(shown.logs[0].details, { length: 2 });
      assert.equal(shown.logs[0].taskId, task.id);
      assert.deepEqual(Object.keys(shown).sort(), [...TASK_FIELDS, "dependsOn", "dependents", "logs"].sort());

      const text = await q(["show", String(task.id)]);
      assert.equal(text.code, 0);
      assert.match(text.stdout, /^id +1\n/);
      assert.match(text.stdout, /\nstatus +completed\n/);
      assert.match(text.stdout, /\nidempotency key +greeting\n/);
      assert.match(text.stdout, /\nattempts +1 of 5\n/);
      assert.match(text.stdout, /\npayload +\{\n +"word": "hi"\n +\}\n/);
      assert.match(text.stdout, /\nprogress +\{\n +"words": 1\n +\}\n/);
      assert.match(text.stdout, /\nresult +\{\n +"said": "hi"\n +\}\n/);
      assert.match(text.stdout, /\nretry policy +-\n/);
      assert.match(text.stdout, /\nLog\n {2}\d{4}-[\d-]+T[\d:.]+Z info {2}said hi \{"length":2\}\n$/);

      const fresh = await qJson<Task>(["enqueue", "noop"]);
      const freshText = (await q(["show", String(fresh.id)])).stdout;
      assert.match(freshText, /\nLog\n {2}\(empty\)\n$/);
      assert.match(freshText, /\nprogress +-\nresult +-\n/);
      assert.deepEqual((await qJson<{ logs: unknown[] }>(["show", String(fresh.id)])).logs, []);
    });
  });

  test("show: a missing or malformed id exits 2", async () => {
    await withFixture(async ({ q }) => {
      const missing = await q(["show", "999"]);
      assert.equal(missing.code, 2);
      assertOneLine(missing.stderr, /^prismq show: No task with id 999\.$/m);
      const none = await q(["show"]);
      assert.equal(none.code, 2);
      assertOneLine(none.stderr, /Missing task id/);
      const bad = await q(["show", "abc"]);
      assert.equal(bad.code, 2);
      assertOneLine(bad.stderr, /Invalid value 'abc' for the task id/);
    });
  });
});

describe("prismq retry, cancel and purge", () => {
  test("retry <id> requeues a failed task with its attempts reset", async () => {
    await withFixture(async ({ q, qJson }) => {
      const opts = { handlers: TEST_HANDLERS };
      const task = await qJson<Task>(["enqueue", "boom", "--max-attempts", "1"], opts);
      await q(["run", "--until-empty"], opts);
      const r = await q(["retry", String(task.id)]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `Task ${task.id} (boom) is queued again, runnable now.\n`);
      const [requeued] = await qJson<Task[]>(["list"]);
      assert.equal(requeued.status, "queued");
      assert.equal(requeued.attempts, 0);

      await q(["run", "--until-empty"], opts);
      const json = await qJson<Task>(["retry", String(task.id)]);
      assert.equal(json.id, task.id);
      assert.equal(json.status, "queued");

      const notFailed = await q(["retry", String(task.id)]);
      assert.equal(notFailed.code, 1);
      assertOneLine(notFailed.stderr, /Cannot retry task 1: it is 'queued'/);
      const missing = await q(["retry", "77"]);
      assert.equal(missing.code, 2);
      assertOneLine(missing.stderr, /No task with id 77/);
    });
  });

  test("retry --failed [--type] requeues every failed task (of that type); --json {requeued}", async () => {
    await withFixture(async ({ q, qJson }) => {
      const opts = { handlers: TEST_HANDLERS };
      for (let i = 0; i < 3; i++) await q(["enqueue", "boom", "--max-attempts", "1"], opts);
      await q(["enqueue", "noop"]);
      // A build that links only 'boom': the noop task fails at once, without retry.
      await q(["run", "--until-empty"], { handlers: [boom] });
      await q(["enqueue", "noop"]);
      assert.equal((await qJson<Task[]>(["list", "--status", "failed"])).length, 4);

      assert.deepEqual(await qJson(["retry", "--failed", "--type", "chatty"]), { requeued: 0 });
      const some = await q(["retry", "--failed", "--type", "boom"]);
      assert.equal(some.stdout, "Queued 3 failed tasks again.\n");
      assert.equal((await qJson<Task[]>(["list", "--status", "failed"])).length, 1);
      assert.deepEqual(await qJson(["retry", "--failed"]), { requeued: 1 });
      assert.deepEqual(await qJson(["retry", "--failed"]), { requeued: 0 });
      assert.equal((await qJson<Task[]>(["list", "--status", "queued"])).length, 5);

      const both = await q(["retry", "1", "--failed"]);
      assert.equal(both.code, 2);
      assertOneLine(both.stderr, /Give a task id or --failed, not both/);
      const typeAlone = await q(["retry", "1", "--type", "boom"]);
      assert.equal(typeAlone.code, 2);
      assertOneLine(typeAlone.stderr, /--type goes with --failed/);
      const none = await q(["retry"]);
      assert.equal(none.code, 2);
      assertOneLine(none.stderr, /Missing task id/);
    });
  });

  test("cancel: a queued task becomes cancelled; a completed one exits 1 with a clear message", async () => {
    await withFixture(async ({ q, qJson }) => {
      const queued = await qJson<Task>(["enqueue", "noop", "--delay", "1h"]);
      const r = await q(["cancel", String(queued.id)]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `Task ${queued.id} (noop) is cancelled.\n`);
      assert.equal((await qJson<Task[]>(["list"]))[0].status, "cancelled");

      const second = await qJson<Task>(["enqueue", "noop", "--delay", "1h"]);
      const json = await qJson<Task>(["cancel", String(second.id)]);
      assert.equal(json.status, "cancelled");
      assert.equal(typeof json.finishedAt, "number");

      const done = await qJson<Task>(["enqueue", "noop"]);
      await q(["run", "--until-empty"]);
      const refused = await q(["cancel", String(done.id)]);
      assert.equal(refused.code, 1);
      assert.equal(refused.stdout, "");
      assertOneLine(
        refused.stderr,
        new RegExp(
          `^prismq cancel: Cannot cancel task ${done.id}: it is 'completed', and only 'waiting', 'queued' or 'running' tasks can be cancelled\\.\\n$`,
        ),
      );
      const again = await q(["cancel", String(queued.id)]);
      assert.equal(again.code, 1);
      assertOneLine(again.stderr, /it is 'cancelled'/);
      const missing = await q(["cancel", "99"]);
      assert.equal(missing.code, 2);
      assertOneLine(missing.stderr, /No task with id 99/);
      const bad = await q(["cancel", "0"]);
      assert.equal(bad.code, 2);
      assertOneLine(bad.stderr, /Invalid value '0' for the task id/);
    });
  });

  test("purge --status completed --older-than 0s deletes finished tasks; --json {deleted}", async () => {
    await withFixture(async ({ q, qJson, inspect }) => {
      const opts = { handlers: TEST_HANDLERS };
      await q(["enqueue", "noop"], opts);
      await q(["enqueue", "chatty", '{"word": "w"}'], opts);
      await q(["enqueue", "boom", "--max-attempts", "1"], opts);
      await q(["enqueue", "noop", "--delay", "1h"], opts);
      await q(["run", "--until-empty"], opts);
      const finished = await inspect(async (queue) =>
        Math.max(...(await queue.list()).map((t) => t.finishedAt ?? 0))
      );
      await waitFor(() => Date.now() > finished, 30_000, "the clock to pass the last finish");

      assert.deepEqual(await qJson(["purge", "--status", "completed", "--older-than", "1h"]), { deleted: 0 });
      assert.deepEqual(await qJson(["purge", "--status", "completed", "--older-than", "0s"]), { deleted: 2 });
      const left = await qJson<Task[]>(["list"]);
      assert.deepEqual(left.map((t) => t.status).sort(), ["failed", "queued"]);
      await inspect(async (queue) => assert.deepEqual(await queue.logs(2), [], "the logs went too"));
      const text = await q(["purge", "--status", "failed,cancelled", "--older-than", "0s"]);
      assert.equal(text.code, 0);
      assert.equal(text.stdout, "Deleted 1 task.\n");
      assert.deepEqual((await qJson<Task[]>(["list"])).map((t) => t.status), ["queued"]);
    });
  });

  test("purge: missing flags, unpurgeable statuses and bad durations exit 2", async () => {
    await withFixture(async ({ q }) => {
      const cases: [string[], RegExp][] = [
        [[], /Missing --status/],
        [["--older-than", "1d"], /Missing --status/],
        [["--status", "completed"], /Missing --older-than/],
        [["--status", "queued", "--older-than", "0s"], /Cannot purge 'queued' tasks/],
        [["--status", "running", "--older-than", "0s"], /Cannot purge 'running' tasks/],
        [["--status", "completed,done", "--older-than", "0s"], /Cannot purge 'done' tasks/],
        [["--status", "completed", "--older-than", "7"], /Invalid duration '7' for --older-than/],
      ];
      for (const [flags, message] of cases) {
        const r = await q(["purge", ...flags]);
        assert.equal(r.code, 2, flags.join(" "));
        assertOneLine(r.stderr, /^prismq purge: /, message);
      }
    });
  });
});
