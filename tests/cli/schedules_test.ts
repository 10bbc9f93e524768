/**
 * `prismq schedules` (`src/cli/commands/schedules.ts`), and the linked schedules `prismq run` fires.
 *
 * The commands run as functions against an in-memory `CliIo` and a real database file.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { defineSchedule } from "../../mod.ts";
import { storeOf } from "../../src/store/store_of.ts";
import type { ScheduleView } from "../../src/cli/commands/schedules.ts";
import { handlers } from "../../handlers/mod.ts";
import { main } from "../../src/cli/main.ts";
import { fakeIo } from "../_cli.ts";
import { withFixture } from "./_fixture.ts";

const nightly = defineSchedule({
  name: "nightly_noop",
  type: "noop",
  cron: "30 2 * * *",
  timeZone: "Europe/Berlin",
  missed: "skip",
});

describe("prismq schedules", () => {
  test("with none linked and none remembered, it says how to declare one", async () => {
    await withFixture(async ({ q }) => {
      const result = await q(["schedules"], { schedules: [] });
      assert.equal(result.code, 0, result.stderr);
      assert.match(
        result.stdout,
        /No schedules\. Declare them beside a handler in handlers\/ with 'export const schedules/,
      );
    });
  });

  test("a linked schedule shows its next run and, once fired, its last slot and task; one the database remembers but the build does not link is marked", async () => {
    await withFixture(async ({ q, qJson, inspect }) => {
      const before = await qJson<ScheduleView[]>(["schedules"], { schedules: [nightly] });
      assert.equal(before.length, 1);
      const [view] = before;
      assert.deepEqual(
        [view.name, view.linked, view.type, view.cron, view.timeZone, view.missed, view.lastSlot, view.since],
        ["nightly_noop", true, "noop", "30 2 * * *", "Europe/Berlin", "skip", null, null],
      );
      assert.ok(
        view.nextRun! > Date.now() && view.nextRun! <= Date.now() + 25 * 3_600_000,
        `${view.nextRun}`,
      );

      const slot = Date.now() - 60_000 - (Date.now() % 1000);
      const taskId = await inspect(async (_, db) => {
        const store = storeOf(db);
        await store.scheduleEnsure(["nightly_noop", "retired"], slot - 60_000);
        const task = {
          type: "noop",
          payload: "{}",
          priority: 100,
          maxAttempts: 5,
          runAfter: slot,
          idempotencyKey: null,
          timeoutMs: null,
          retryPolicy: null,
          queue: "default",
          uniqueKey: null,
          uniqueForMs: null,
        };
        const result = await store.scheduleFire({
          name: "nightly_noop",
          slot,
          expectedSlot: null,
          task,
          now: slot,
        });
        assert.ok(result.fired);
        return result.taskId;
      });
      const after = await qJson<ScheduleView[]>(["schedules"], { schedules: [nightly] });
      assert.deepEqual(after.map((v) => [v.name, v.linked, v.lastSlot, v.lastTaskId]), [
        ["nightly_noop", true, slot, taskId],
        ["retired", false, null, null],
      ]);
      const text = await q(["schedules"], { schedules: [nightly] });
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /NAME\s+TYPE\s+CRON\s+MISSED\s+NEXT RUN\s+LAST FIRED SLOT\s+TASK/);
      assert.match(
        text.stdout,
        new RegExp(
          `nightly_noop\\s+noop\\s+30 2 \\* \\* \\* Europe/Berlin\\s+skip\\s+\\S+\\s+${
            new Date(slot).toISOString()
          }\\s+${taskId}`,
        ),
      );
      assert.match(text.stdout, /retired\s+-\s+not linked\s+-\s+-\s+never\s+-/);
    });
  });

  test("is listed in prismq --help and has its own --help", async () => {
    await withFixture(async ({ q }) => {
      assert.match((await q(["--help"])).stdout, /schedules\s+List schedules: next run, last slot fired/);
      assert.match((await q(["schedules", "--help"])).stdout, /Usage: prismq schedules \[--json\]/);
      assert.equal((await q(["schedules", "extra"])).code, 2);
    });
  });

  test("prismq run fires the linked schedules, each slot due at its time", async () => {
    await withFixture(async ({ dbPath, inspect }) => {
      const everySecond = defineSchedule({ name: "every_second", type: "noop", cron: "* * * * * *" });
      const io = fakeIo();
      const run = main(["run", "--db", dbPath, "--grace", "0ms"], io, handlers, [everySecond]);
      const deadline = Date.now() + 20_000;
      let lastSlot: number | null = null;
      while (lastSlot === null && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        lastSlot = (await inspect((queue) => queue.schedules()))[0]?.lastSlot ?? null;
      }
      io.fire("SIGTERM");
      assert.equal(await run, 0, io.err);
      assert.notEqual(lastSlot, null, "a slot was fired");
      const tasks = await inspect((queue) => queue.list({ type: "noop" }));
      assert.ok(tasks.length >= 1 && tasks.every((task) => task.runAfter % 1000 === 0));
    });
  });
});
