/**
 * `prismq enqueue --depends-on` and how the other commands show waiting tasks: list --status waiting,
 * cancels and retries down a chain, and the errors a bad or missing dependency gives.
 *
 * The commands run as functions against an in-memory `CliIo` and a real database file.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Task } from "../../mod.ts";
import { assertOneLine } from "../_helpers.ts";
import { TEST_HANDLERS, withFixture } from "./_fixture.ts";

describe("prismq and dependencies", () => {
  test("--depends-on makes a waiting task, listed by --status waiting, run once its dependencies complete", async () => {
    await withFixture(async ({ q, qJson }) => {
      const opts = { handlers: TEST_HANDLERS };
      const a = await qJson<Task>(["enqueue", "noop"], opts);
      const b = await qJson<Task>(["enqueue", "noop"], opts);
      const text = await q(["enqueue", "noop", "--depends-on", `${a.id},${b.id}`], opts);
      assert.equal(text.code, 0, text.stderr);
      assert.equal(text.stdout, "Enqueued task 3 (noop), waiting for its dependencies.\n");
      assert.deepEqual((await qJson<Task[]>(["list", "--status", "waiting"])).map((t) => t.id), [3]);
      const listed = (await q(["list", "--status", "waiting"])).stdout.trimEnd().split("\n");
      assert.match(listed[1]!, /^ *3 +noop +waiting +0\/5 +100 +after its dependencies +\d{4}-/);
      assert.match((await q(["status"])).stdout, /^Tasks: waiting 1 · queued 2 · /m);

      assert.equal((await q(["run", "--until-empty"], opts)).code, 0);
      const done = await qJson<Task[]>(["list"]);
      assert.deepEqual(done.map((t) => [t.id, t.status]), [[3, "completed"], [2, "completed"], [
        1,
        "completed",
      ]]);
      assert.ok(done[0]!.startedAt! >= Math.max(done[1]!.finishedAt!, done[2]!.finishedAt!));
    });
  });

  test("show names the tasks a task depends on and those depending on it, in text and JSON", async () => {
    await withFixture(async ({ q, qJson }) => {
      const a = await qJson<Task>(["enqueue", "noop", "--delay", "1h"]);
      const b = await qJson<Task>(["enqueue", "noop", "--delay", "1h"]);
      const c = await qJson<Task>(["enqueue", "noop", "--depends-on", `${b.id},${a.id}`]);
      const shown = await qJson<Task & { dependsOn: number[]; dependents: number[] }>(["show", String(c.id)]);
      assert.deepEqual([shown.dependsOn, shown.dependents], [[a.id, b.id], []]);
      const text = (await q(["show", String(a.id)])).stdout;
      assert.match(text, new RegExp(`^Waited on by: ${c.id}$`, "m"));
      assert.doesNotMatch(text, /^Depends on:/m);
      assert.match(
        (await q(["show", String(c.id)])).stdout,
        new RegExp(`^Depends on: ${a.id}, ${b.id}$`, "m"),
      );
    });
  });

  test("cancelling a dependency cancels its dependents, which say why; retry refuses them until it is retried", async () => {
    await withFixture(async ({ q, qJson }) => {
      const a = await qJson<Task>(["enqueue", "noop", "--delay", "1h"]);
      const b = await qJson<Task>(["enqueue", "noop", "--depends-on", String(a.id)]);
      assert.equal((await q(["cancel", String(a.id)])).code, 0);
      const cancelled = await qJson<Task>(["show", String(b.id)]);
      assert.deepEqual([cancelled.status, cancelled.errorMessage], [
        "cancelled",
        `Dependency task ${a.id} was cancelled`,
      ]);
      const refused = await q(["retry", String(b.id)]);
      assert.equal(refused.code, 1);
      assertOneLine(
        refused.stderr,
        /Cannot retry task 2: its dependency, task 1, is 'cancelled'.*Retry task 1 first/,
      );
      assert.equal((await q(["retry", String(a.id)])).code, 0);
      assert.equal((await q(["retry", String(b.id)])).code, 0);
      assert.equal((await qJson<Task>(["show", String(b.id)])).status, "waiting");
      const late = await q(["enqueue", "noop", "--depends-on", String(b.id)]);
      assert.equal(late.stdout, "Enqueued task 3 (noop), waiting for its dependencies.\n");
    });
  });

  test("a dependency that failed already cancels the new task at once, and the output says why", async () => {
    await withFixture(async ({ q, qJson }) => {
      const opts = { handlers: TEST_HANDLERS };
      const boom = await qJson<Task>(["enqueue", "boom", "--max-attempts", "1"], opts);
      assert.equal((await q(["run", "--until-empty"], opts)).code, 0);
      const text = await q(["enqueue", "noop", "--depends-on", String(boom.id)], opts);
      assert.equal(text.code, 0, text.stderr);
      assert.match(
        text.stdout,
        /^Enqueued task 2 \(noop\), cancelled at once: Dependency task 1 failed: .+\.\n$/,
      );
    });
  });

  test("a missing dependency exits 1 naming it; a malformed --depends-on exits 2; neither writes anything", async () => {
    await withFixture(async ({ q, qJson }) => {
      const missing = await q(["enqueue", "noop", "--depends-on", "42"]);
      assert.equal(missing.code, 1);
      assertOneLine(missing.stderr, /depends on task 42: no task has that id/);
      for (const bad of ["", "1,,2", "x", "0", "1.5"]) {
        const r = await q(["enqueue", "noop", "--depends-on", bad]);
        assert.equal(r.code, 2, `--depends-on '${bad}': ${r.stderr}`);
        assertOneLine(r.stderr, /--depends-on/);
      }
      assert.deepEqual(await qJson(["list"]), []);
    });
  });
});
