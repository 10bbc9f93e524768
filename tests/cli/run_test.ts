/**
 * `prismq run` (`src/cli/commands/run.ts`): draining, output, signals, cancels, timeouts, mixed fleets.
 *
 * The commands run as functions against an in-memory `CliIo` and a real database file.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import * as v from "valibot";
import { backoffDelayMs, DEFAULT_RETRY_POLICY, defineHandler, QueueDatabase, type Task } from "../../mod.ts";
import { handlers } from "../../handlers/mod.ts";
import { main } from "../../src/cli/main.ts";
import { fakeIo } from "../_cli.ts";
import {
  ANY_ESCAPE,
  assertOneLine,
  deferred,
  delay,
  holdWriteLock,
  jsonLines,
  track,
  waitFor,
  within,
} from "../_helpers.ts";
import { ALL_SGR, heldHandler, TEST_HANDLERS, withFixture } from "./_fixture.ts";

describe("prismq run", () => {
  test("--until-empty drains the queue, exits 0, and prints plain log lines", async () => {
    await withFixture(async ({ q, qJson }) => {
      for (let i = 0; i < 5; i++) await q(["enqueue", "noop", `{"sleepMs": ${i}}`]);
      const r = await q(["run", "--until-empty", "--worker-id", "w-test"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      assert.doesNotMatch(r.stdout, ANY_ESCAPE);
      const lines = r.stdout.trimEnd().split("\n");
      assert.equal(
        lines[0],
        "Worker w-test started: concurrency 4, strategy priority, queues all, types all.",
      );
      const completed = lines.filter((line) => / completed task \d+ \(noop\) in \d+ ms$/.test(line));
      assert.equal(completed.length, 5);
      for (const line of completed) assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /);
      assert.equal(
        lines.at(-1),
        "Worker w-test stopped: 5 completed, 0 failed, 0 retried, 0 snoozed, 0 cancelled, 0 lost their lease, 0 handed back.",
      );
      const status = await qJson<{ counts: Record<string, number> }>(["status"]);
      assert.deepEqual(status.counts, {
        waiting: 0,
        queued: 0,
        running: 0,
        completed: 5,
        failed: 0,
        cancelled: 0,
      });
      assert.deepEqual(await qJson(["workers"]), [], "the worker unregisters when it stops");
    });
  });

  test("--until-empty says how many tasks still wait for a later time, and when the next is due", async () => {
    await withFixture(async ({ q, qJson }) => {
      const opts = { handlers: TEST_HANDLERS };
      await q(["enqueue", "noop"], opts);
      const soon = await qJson<Task>(["enqueue", "noop", "--delay", "10m"], opts);
      await q(["enqueue", "noop", "--run-at", "2030-01-31T09:00:00Z"], opts);
      const chatty = await qJson<Task>(["enqueue", "chatty", '{"word": "later"}', "--delay", "5m"], opts);

      const r = await q(["run", "--until-empty", "--types", "noop"], opts);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split("\n");
      assert.match(
        lines.at(-2)!,
        new RegExp(
          `^2 tasks wait for a later time; the next is due at ${
            new Date(soon.runAfter).toISOString().replace(/\./g, "\\.")
          } \\(in \\d+ min \\d+ s\\)\\.$`,
        ),
        "only the worker's own types count",
      );
      assert.match(lines.at(-1)!, /stopped: 1 completed/);

      const json = await q(["run", "--until-empty", "--json"], opts);
      assert.equal(json.code, 0, json.stderr);
      const waiting = jsonLines(json.stdout).find((e) => e.event === "waiting");
      assert.equal(waiting?.count, 3);
      assert.equal(waiting?.nextRunAfter, chatty.runAfter, "the chatty task, 5 min away, is next");
      assert.match(waiting?.message as string, /^3 tasks wait for a later time; the next is due at /);

      const none = await q(["run", "--until-empty", "--types", "send_email"], opts);
      assert.doesNotMatch(none.stdout, /wait for a later time/, "nothing is said when nothing waits");
    });
  });

  test("the default worker id is <hostname>-<pid> from io", async () => {
    await withFixture(async ({ q }) => {
      const r = await q(["run", "--until-empty"]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^Worker test-host-4242 started/);
    });
  });

  test("--json prints one JSON event per line", async () => {
    await withFixture(async ({ q }) => {
      await q(["enqueue", "noop"]);
      await q(["enqueue", "noop"]);
      const r = await q(["run", "--until-empty", "--json", "--concurrency", "2", "--prefetch", "0"]);
      assert.equal(r.code, 0, r.stderr);
      const events = jsonLines(r.stdout);
      for (const event of events) {
        assert.equal(typeof event.event, "string");
        assert.ok(!Number.isNaN(Date.parse(event.at as string)), "each event has its time");
      }
      assert.deepEqual(events.map((e) => e.event).filter((e) => e !== "claimed"), [
        "note",
        "completed",
        "completed",
        "note",
      ]);
      assert.equal(events.filter((e) => e.event === "claimed").length, 2);
      const completed = events.filter((e) => e.event === "completed");
      assert.deepEqual(completed.map((e) => e.taskId).sort(), [1, 2]);
      for (const e of completed) {
        assert.equal(e.type, "noop");
        assert.equal(e.attempt, 1);
        assert.equal(typeof e.durationMs, "number");
      }
      assert.match(events.at(-1)!.message as string, /stopped: 2 completed/);
    });
  });

  test("a failing handler: retrying and failed lines, and events with the error", async () => {
    await withFixture(async ({ q, qJson, inspect }) => {
      const once = await qJson<Task>(["enqueue", "boom", "--max-attempts", "1"], { handlers: TEST_HANDLERS });
      const twice = await qJson<Task>(["enqueue", "boom", "--max-attempts", "2"], {
        handlers: TEST_HANDLERS,
      });
      const ran = Date.now();
      const r = await q(["run", "--until-empty"], { handlers: TEST_HANDLERS });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(` failed task ${once.id} \\(boom\\) after attempt 1: kaboom\\n`));
      assert.match(
        r.stdout,
        new RegExp(
          ` retrying task ${twice.id} \\(boom\\) after attempt 1, at \\d{4}-[\\d-]+T[\\d:.]+Z: kaboom\\n`,
        ),
      );
      assert.match(r.stdout, /stopped: 0 completed, 1 failed, 1 retried/);
      await inspect(async (queue) => {
        const failed = await queue.get(once.id);
        assert.equal(failed?.status, "failed");
        assert.equal(failed?.errorMessage, "kaboom");
        const retrying = await queue.get(twice.id);
        assert.equal(retrying?.status, "queued");
        assert.equal(retrying?.attempts, 1);
        // Due at least the shortest first backoff after the attempt failed, which was after `ran`.
        const shortest = backoffDelayMs(DEFAULT_RETRY_POLICY, 1, () => 0);
        assert.ok(retrying!.runAfter >= ran + shortest, "a retry waits for its backoff");
      });

      const again = await qJson<Task>(["enqueue", "boom", "--max-attempts", "1"], {
        handlers: TEST_HANDLERS,
      });
      const json = await q(["run", "--until-empty", "--json"], { handlers: TEST_HANDLERS });
      const failed = jsonLines(json.stdout).find((e) => e.event === "failed");
      assert.deepEqual({ ...failed, at: undefined, durationMs: undefined }, {
        at: undefined,
        durationMs: undefined,
        event: "failed",
        taskId: again.id,
        type: "boom",
        attempt: 1,
        error: "kaboom",
      });
    });
  });

  test("a signal through io.onSignal hands running tasks back after --grace: queued, attempts 0, exit 0", async () => {
    await withFixture(async ({ q, qJson, dbPath }) => {
      // A minute each: far longer than the run may take, however slow this machine is.
      await q(["enqueue", "noop", '{"sleepMs": 60000}']);
      await q(["enqueue", "noop", '{"sleepMs": 60000}']);
      const io = fakeIo();
      const started = performance.now();
      const run = main(
        ["run", "--grace", "100ms", "--json", "--worker-id", "sig", "--db", dbPath],
        io,
        handlers,
      );
      await waitFor(
        () => jsonLines(io.out).filter((e) => e.event === "claimed").length === 2,
        30_000,
        "both tasks to be claimed",
      );
      assert.equal(io.signalListeners, 1, "run listens for signals");

      const status = await qJson<{ counts: Record<string, number>; workers: Record<string, unknown>[] }>([
        "status",
      ]);
      assert.equal(status.counts.running, 2);
      assert.equal(status.workers.length, 1);
      assert.equal(status.workers[0].id, "sig");
      assert.equal(status.workers[0].host, "test-host");
      assert.equal(status.workers[0].pid, 4242);
      assert.equal(status.workers[0].stale, false);

      const signalled = performance.now();
      io.fire("SIGTERM");
      const code = await within(60_000, "prismq run after SIGTERM", run);
      assert.equal(code, 0, io.err);
      assert.ok(performance.now() - signalled >= 95, "the handlers had their grace period");
      // The handlers started after `started`: had they been waited out, their minute would have passed.
      assert.ok(performance.now() - started < 60_000, "the minute-long handlers were waited out");
      assert.equal(io.signalListeners, 0, "run stops listening once it ends");
      const events = jsonLines(io.out);
      assert.ok(
        events.some((e) =>
          e.event === "note" && /^SIGTERM: finishing running tasks/.test(e.message as string)
        ),
      );
      assert.equal(events.filter((e) => e.event === "released").length, 2);
      assert.equal(events.filter((e) => e.event === "completed").length, 0);

      const tasks = await qJson<Task[]>(["list"]);
      assert.deepEqual(tasks.map((t) => [t.status, t.attempts]), [["queued", 0], ["queued", 0]]);
      assert.deepEqual(await qJson(["workers"]), []);
    });
  });

  test("a second signal ends the grace period at once", async () => {
    await withFixture(async ({ q, qJson, dbPath }) => {
      await q(["enqueue", "noop", '{"sleepMs": 60000}']);
      const io = fakeIo();
      const started = performance.now();
      const run = main(["run", "--grace", "60s", "--db", dbPath], io, handlers);
      await waitFor(async () => (await qJson<Task[]>(["list", "--status", "running"])).length === 1);
      io.fire("SIGINT");
      await waitFor(() => io.out.includes("SIGINT: finishing running tasks (up to 1 min 0 s)"));
      io.fire("SIGINT");
      assert.equal(await within(60_000, "prismq run after the second SIGINT", run), 0, io.err);
      // Neither the minute's grace nor the minute-long handler, both begun after `started`, was waited out.
      assert.ok(performance.now() - started < 60_000, "the second signal did not end the grace period");
      assert.match(io.out, /SIGINT again: handing running tasks back to the queue now\./);
      assert.match(io.out, / handed back task 1 \(noop\) to the queue\n/);
      assert.match(
        io.out,
        /0 completed, 0 failed, 0 retried, 0 snoozed, 0 cancelled, 0 lost their lease, 1 handed back\.\n$/,
      );
      const [task] = await qJson<Task[]>(["list"]);
      assert.equal(task.status, "queued");
      assert.equal(task.attempts, 0);
    });
  });

  test("a stop whose hand-back another process's lock keeps out exits 1 and says the task was not handed back", async () => {
    await withFixture(async ({ q, qJson, dbPath }) => {
      await q(["enqueue", "noop", '{"sleepMs": 20000}']);
      // Opened first, this handle fixes the settings of the connection the command shares: a short wait for
      // the lock, so that the hand-back gives up soon.
      const first = new QueueDatabase(dbPath, { busyTimeoutMs: 200 });
      let holder: { release: () => Promise<number | null> } | undefined;
      try {
        await first.initializeSchema();
        const io = fakeIo();
        const run = main(["run", "--grace", "0ms", "--worker-id", "w", "--db", dbPath], io, handlers);
        await waitFor(async () => (await qJson<Task[]>(["list", "--status", "running"])).length === 1);
        holder = await holdWriteLock(dbPath);
        io.fire("SIGTERM");
        assert.equal(await run, 1, io.out);
        assert.match(
          io.err,
          new RegExp(
            "^prismq run: Worker 'w' could not hand 1 task back to the queue \\(The database .* stayed " +
              "locked by another process for too long\\..*\\); they go back by themselves when their leases " +
              "expire, within 60000 ms\\.\n$",
          ),
        );
        assert.match(io.out, /Worker w stopped on an error\.\n$/);
        assert.equal(await holder.release(), 0);
        assert.equal((await qJson<Task>(["show", "1"])).status, "running", "not handed back");
      } finally {
        await holder?.release();
        await first.close();
      }
    });
  });

  for (const order of [["SIGPIPE", "SIGTERM"], ["SIGTERM", "SIGPIPE"]] as const) {
    test(`a lost stdout (SIGPIPE) stops gracefully and never counts as a second signal: ${order.join(" then ")}`, async () => {
      await withFixture(async ({ q, qJson, dbPath }) => {
        const held = heldHandler();
        const withHeld = [...handlers, held.definition];
        await q(["enqueue", "held"], { handlers: withHeld });
        const io = fakeIo();
        const run = main(["run", "--grace", "30s", "--json", "--db", dbPath], io, withHeld);
        const ended = track(run);
        await waitFor(() => jsonLines(io.out).some((e) => e.event === "claimed"), 30_000, "the claim");
        for (const signal of order) io.fire(signal);
        // The handler runs until the test lets it finish; a stop that handed it back would abort it now.
        await delay(100);
        assert.equal(ended(), false, "the run ended while its handler still ran");
        held.release();
        assert.equal(await within(60_000, "prismq run after its handler finished", run), 0, io.err);
        const events = jsonLines(io.out);
        assert.equal(events.filter((e) => e.event === "completed").length, 1);
        assert.equal(events.filter((e) => e.event === "released").length, 0);
        assert.ok(!io.out.includes("again: handing running tasks back"));
        assert.equal((await qJson<Task>(["show", "1"])).status, "completed");
      });
    });
  }

  test("SIGPIPE alone stops the worker, which claims nothing more", async () => {
    await withFixture(async ({ q, qJson, dbPath }) => {
      // The only slot stays busy until the signal has come, however long the second enqueue takes.
      const held = heldHandler();
      const withHeld = [...handlers, held.definition];
      await q(["enqueue", "held"], { handlers: withHeld });
      const io = fakeIo();
      const run = main(
        ["run", "--concurrency", "1", "--prefetch", "0", "--json", "--db", dbPath],
        io,
        withHeld,
      );
      await waitFor(() => jsonLines(io.out).some((e) => e.event === "claimed"), 30_000, "the claim");
      await q(["enqueue", "noop"]);
      io.fire("SIGPIPE");
      held.release();
      assert.equal(await within(60_000, "prismq run after SIGPIPE", run), 0, io.err);
      const tasks = await qJson<Task[]>(["list"]);
      assert.deepEqual(tasks.map((t) => t.status).sort(), ["completed", "queued"]);
    });
  });

  test("cancel of a running task: the worker stops its handler and reports it cancelled, not a lost lease", async () => {
    await withFixture(async ({ q, qJson, dbPath }) => {
      const gate = defineHandler({
        type: "gate",
        schema: v.object({}),
        description: "Runs until its signal aborts.",
        handle: (_task, ctx) =>
          new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve())),
      });
      const opts = { handlers: [...TEST_HANDLERS, gate] };
      for (const asJson of [true, false]) {
        const task = await qJson<Task>(["enqueue", "gate"], opts);
        const io = fakeIo();
        const argv = [
          "run",
          "--until-empty",
          "--worker-id",
          "w",
          "--db",
          dbPath,
          ...(asJson ? ["--json"] : []),
        ];
        const run = main(argv, io, opts.handlers);
        await waitFor(
          async () => (await qJson<Task>(["show", String(task.id)])).status === "running",
          30_000,
          "the task to run",
        );
        const cancel = await q(["cancel", String(task.id)]);
        assert.equal(cancel.code, 0, cancel.stderr);
        assert.equal(await within(60_000, "prismq run after the cancel", run), 0, io.err);
        assert.equal((await qJson<Task>(["show", String(task.id)])).status, "cancelled");
        if (asJson) {
          const events = jsonLines(io.out);
          const cancelled = events.find((e) => e.event === "cancelled");
          assert.deepEqual({ ...cancelled, at: undefined }, {
            at: undefined,
            event: "cancelled",
            taskId: task.id,
            type: "gate",
            attempt: 1,
          });
          assert.equal(events.some((e) => e.event === "lease-lost" || e.event === "completed"), false);
          assert.match(
            events.at(-1)!.message as string,
            /0 retried, 0 snoozed, 1 cancelled, 0 lost their lease/,
          );
        } else {
          assert.match(
            io.out,
            new RegExp(` cancelled task ${task.id} \\(gate\\) while this worker held it\n`),
          );
          assert.doesNotMatch(io.out, /lease lost/);
          assert.match(io.out, /0 retried, 0 snoozed, 1 cancelled, 0 lost their lease, 0 handed back\.\n$/);
        }
      }
    });
  });

  test("on a terminal the status line is redrawn while a long task runs: it shows 'running 1', then 'done 1'", async () => {
    await withFixture(async ({ q, dbPath }) => {
      const release = deferred();
      const gate = defineHandler({
        type: "gate",
        schema: v.object({}),
        description: "Waits until the test lets it finish.",
        handle: () => release.promise,
      });
      const opts = { handlers: [...TEST_HANDLERS, gate] };
      assert.equal((await q(["enqueue", "gate"], opts)).code, 0);
      const io = fakeIo({ tty: true });
      const run = main(["run", "--until-empty", "--worker-id", "live", "--db", dbPath], io, opts.handlers);
      try {
        // Only the status line can say so: no event comes while the handler runs.
        await waitFor(() => io.out.includes("running 1"), 20_000, "the status line to show the task running");
      } finally {
        release.resolve();
      }
      assert.equal(await within(60_000, "prismq run after its handler finished", run), 0, io.err);
      const lastStatus = io.out.split("\r\x1b[2K").filter((draw) => draw.includes("done")).at(-1)!;
      assert.match(
        lastStatus.replace(ALL_SGR, ""),
        /live {2}done 1 · failed 0 · retried 0 · running 0 · /,
      );
    });
  });

  test("--timeout on a task: the attempt is aborted and fails with the timeout", async () => {
    await withFixture(async ({ q, qJson }) => {
      await q(["enqueue", "noop", '{"sleepMs": 60000}', "--timeout", "100ms", "--max-attempts", "1"]);
      const started = performance.now();
      const r = await q(["run", "--until-empty"]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(performance.now() - started < 60_000, "the minute-long handler was not stopped");
      assert.match(
        r.stdout,
        / failed task 1 \(noop\) after attempt 1: TaskTimeoutError: Task 1 timed out after 100 ms\.\n/,
      );
      const task = await qJson<Task>(["show", "1"]);
      assert.equal(task.status, "failed");
      assert.equal(task.timeoutMs, 100);
    });
  });

  test("--types with an unknown type, a bad --strategy, --lease under 1s and others exit 2", async () => {
    const linked = `Linked types: ${handlers.map((h) => h.type).join(", ")}\\.`;
    await withFixture(async ({ q, dbPath }) => {
      const cases: [string[], RegExp][] = [
        [
          ["--types", "noop,send_sms"],
          new RegExp(`No linked handler for 'send_sms' in --types\\. ${linked}`),
        ],
        [["--types", "noop,"], /Invalid list/],
        [
          ["--strategy", "random"],
          /Unknown --strategy 'random'\. Use one of: priority, fifo, lifo, weighted_random/,
        ],
        [["--lease", "10ms"], /--lease must be at least 1s/],
        [["--lease", "soon"], /Invalid duration 'soon' for --lease/],
        [["--concurrency", "0"], /--concurrency/],
        [["--prefetch", "-1"], /--prefetch/],
        [["--prefetch", "lots"], /--prefetch/],
        [["--grace", "5"], /Invalid duration '5' for --grace/],
        [["--poll", "0ms"], /--poll must be at least 1ms/],
        [["--worker-id", " "], /--worker-id is empty/],
        [["now"], /Unexpected argument 'now'/],
      ];
      for (const [flags, message] of cases) {
        const r = await q(["run", "--until-empty", ...flags]);
        assert.equal(r.code, 2, flags.join(" "));
        assert.equal(r.stdout, "");
        assertOneLine(r.stderr, /^prismq run: /, message);
      }
      assert.equal(existsSync(dbPath), false);
    });
  });

  test("--types limits the claims to those types", async () => {
    await withFixture(async ({ q, qJson }) => {
      await q(["enqueue", "noop"]);
      await q(["enqueue", "chatty", '{"word": "hi"}'], { handlers: TEST_HANDLERS });
      const r = await q(["run", "--until-empty", "--types", "chatty"], { handlers: TEST_HANDLERS });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /types chatty\./);
      const status = await qJson<{ byType: Record<string, Record<string, number>> }>(["status"]);
      assert.equal(status.byType.chatty.completed, 1);
      assert.equal(status.byType.noop.queued, 1);
    });
  });
});

describe("prismq run in a mixed fleet (rolling deploys)", () => {
  test("--types linked: a worker built before a handler existed leaves its tasks queued for one that has it", async () => {
    await withFixture(async ({ q, qJson }) => {
      const newBuild = { handlers: TEST_HANDLERS };
      const oldBuild = { handlers }; // without chatty and boom
      const chatty = await qJson<Task>(["enqueue", "chatty", '{"word": "hi"}'], newBuild);
      const noop = await qJson<Task>(["enqueue", "noop"], newBuild);

      const old = await q(["run", "--until-empty", "--types", "linked", "--worker-id", "old"], oldBuild);
      assert.equal(old.code, 0, old.stderr);
      assert.match(old.stdout, new RegExp(`types ${handlers.map((h) => h.type).join(", ")}\\.`));
      assert.equal((await qJson<Task>(["show", String(noop.id)])).status, "completed");
      const waiting = await qJson<Task>(["show", String(chatty.id)]);
      assert.deepEqual([waiting.status, waiting.attempts, waiting.errorMessage], ["queued", 0, null]);

      const updated = await q(["run", "--until-empty", "--types", "linked"], newBuild);
      assert.equal(updated.code, 0, updated.stderr);
      assert.equal((await qJson<Task>(["show", String(chatty.id)])).status, "completed");
    });
  });

  test("without --types, a type with no linked handler fails at once, naming the linked types", async () => {
    await withFixture(async ({ q, qJson }) => {
      const chatty = await qJson<Task>(["enqueue", "chatty", '{"word": "hi"}'], { handlers: TEST_HANDLERS });
      const r = await q(["run", "--until-empty"], { handlers });
      assert.equal(r.code, 0, r.stderr);
      const failed = await qJson<Task>(["show", String(chatty.id)]);
      assert.equal(failed.status, "failed");
      assert.equal(failed.attempts, 1, "no retry");
      assert.match(
        failed.errorMessage ?? "",
        /^No handler registered for task type 'chatty'\. Registered types: \['backup_database', /,
      );
    });
  });

  test("--types linked stands alone, and needs a build with handlers", async () => {
    await withFixture(async ({ q }) => {
      const mixed = await q(["run", "--until-empty", "--types", "linked,noop"]);
      assert.equal(mixed.code, 2);
      assertOneLine(mixed.stderr, /'linked' in --types stands alone/);
      const none = await q(["run", "--until-empty", "--types", "linked"], { handlers: [] });
      assert.equal(none.code, 2);
      assertOneLine(none.stderr, /this build links no handlers/);
    });
  });
});
