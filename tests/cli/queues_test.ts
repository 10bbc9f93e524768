/**
 * Named queues on the command line: `enqueue --queue` and the NDJSON `queue` field, `list --queue`,
 * `run --queues` (a list, or lanes `a:4,b:2`), `queue set|pause|resume` and `queues`
 * (`src/cli/commands/queues.ts`, `run.ts`, `enqueue.ts`).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { withFixture } from "./_fixture.ts";

interface QueueView {
  name: string;
  queued: number;
  running: number;
  concurrency: number | null;
  rate: { limit: number; intervalMs: number } | null;
  paused: boolean;
  oldestWaitMs: number | null;
}

describe("prismq named queues", () => {
  test("enqueue --queue and NDJSON's queue put tasks in queues; list --queue and queues show them", async () => {
    await withFixture(async ({ q, qJson }) => {
      const task = await qJson<{ queue: string }>(["enqueue", "noop", "--queue", "emails"]);
      assert.equal(task.queue, "emails");
      assert.equal((await qJson<{ queue: string }>(["enqueue", "noop"])).queue, "default");
      const lines = [
        JSON.stringify({ type: "noop", queue: "bulk" }),
        JSON.stringify({ type: "noop", queue: "bad name" }),
      ].join("\n") + "\n";
      const bulk = await q(["enqueue", "--ndjson", "-"], { stdin: lines });
      assert.equal(bulk.code, 2, "one bad line");
      assert.match(bulk.stderr + bulk.stdout, /line 2: .*queue name of 1 to 128/);
      const listed = await qJson<{ queue: string }[]>(["list", "--queue", "bulk"]);
      assert.deepEqual(listed.map((t) => t.queue), ["bulk"]);
      const queues = await qJson<QueueView[]>(["queues"]);
      assert.deepEqual(queues.map((v) => [v.name, v.queued, v.running]), [
        ["bulk", 1, 0],
        ["default", 1, 0],
        ["emails", 1, 0],
      ]);
      const text = await q(["queues"]);
      assert.match(text.stdout, /^QUEUE +QUEUED +RUNNING +CONCURRENCY +RATE +STATE +OLDEST WAIT\n/);
      assert.match(text.stdout, /\nemails +1 +0 +- +- +active +\S/);
    });
  });

  test("queue set, pause and resume change a queue's settings; queues shows them", async () => {
    await withFixture(async ({ q, qJson }) => {
      const typo = await q(["queue", "pause", "api"]);
      assert.equal(typo.code, 2, "a queue with no tasks and no settings is refused");
      assert.match(typo.stderr, /No queue 'api' has tasks or settings\..*--new/s);
      assert.deepEqual(await qJson(["queues"]), [], "and nothing was made");
      const set = await q(["queue", "set", "api", "--concurrency", "5", "--rate", "100/s", "--new"]);
      assert.equal(set.code, 0, set.stderr);
      assert.equal(set.stdout, "api: concurrency 5, rate 100/s\n");
      assert.deepEqual(await qJson(["queue", "set", "api", "--rate", "5/2m"]), {
        name: "api",
        concurrency: 5,
        rate: { limit: 5, intervalMs: 120_000 },
        paused: false,
      });
      assert.equal((await q(["queue", "pause", "api"])).stdout, "api: concurrency 5, rate 5/2m, paused\n");
      const [api] = await qJson<QueueView[]>(["queues"]);
      assert.deepEqual([api!.name, api!.concurrency, api!.paused], ["api", 5, true]);
      assert.match((await q(["queues"])).stdout, /\napi +0 +0 +5 +5\/2m +paused +-\n/);
      await q(["queue", "resume", "api"]);
      const cleared = await q(["queue", "set", "api", "--concurrency", "none", "--rate", "none"]);
      assert.equal(cleared.stdout, "api: concurrency unlimited, rate unlimited\n");
    });
  });

  test("queue refuses what it cannot do, with exit code 2 and what to write instead", async () => {
    await withFixture(async ({ q }) => {
      for (
        const [argv, message] of [
          [["queue"], /Missing action/],
          [["queue", "drain", "a"], /Unknown action 'drain'/],
          [["queue", "set"], /Missing queue name/],
          [["queue", "set", "a"], /Nothing to set/],
          [["queue", "set", "a", "--concurrency", "0"], /--concurrency/],
          [["queue", "set", "a", "--rate", "fast"], /A rate is a number of starts per interval, like 100\/s/],
          [["queue", "pause", "a b"], /queue name of 1 to 128/],
          [["queue", "pause", "a", "--concurrency", "3"], /go with 'prismq queue set'/],
          [["run", "--queues", "a,,b"], /--queues/],
          [["run", "--queues", "a:0"], /--queues a/],
          [["run", "--queues", "a,a:2"], /named twice/],
          [["enqueue", "noop", "--queue", "a:4"], /--queue must be a queue name/],
        ] as [string[], RegExp][]
      ) {
        const r = await q(argv);
        assert.equal(r.code, 2, `${argv.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, message, argv.join(" "));
      }
    });
  });

  test("run --queues takes only those queues; lanes a:n get workers of their own", async () => {
    await withFixture(async ({ q, qJson }) => {
      for (const queue of ["a", "b", "c"]) await q(["enqueue", "noop", "--queue", queue]);
      const onlyA = await q(["run", "--queues", "a", "--until-empty"]);
      assert.equal(onlyA.code, 0, onlyA.stderr);
      assert.match(onlyA.stdout + onlyA.stderr, /queues a, types all\./);
      const afterA = await qJson<QueueView[]>(["queues"]);
      // Queue a, empty and without settings, is no longer listed.
      assert.deepEqual(afterA.map((v) => [v.name, v.queued]), [["b", 1], ["c", 1]]);
      const lanes = await q(["run", "--queues", "b:2,c", "--concurrency", "3", "--until-empty", "--json"]);
      assert.equal(lanes.code, 0, lanes.stderr);
      assert.match(lanes.stdout + lanes.stderr, /concurrency b 2, c 3/);
      const ran = await qJson<{ queue: string; lockedBy: string }[]>(["list", "--status", "completed"]);
      const byQueue = Object.fromEntries(ran.map((t) => [t.queue, t.lockedBy]));
      assert.doesNotMatch(byQueue.a!, /\//, "a worker without lanes keeps its id");
      assert.match(byQueue.b!, /\/b$/, "queue b's lane");
      assert.match(byQueue.c!, /\/c$/, "queue c's lane");
    });
  });
});
