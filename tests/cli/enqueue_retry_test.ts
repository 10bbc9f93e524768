/**
 * `prismq enqueue`'s per-task backoff (`src/cli/commands/enqueue_retry.ts`): the `--retry-*` flags and the
 * NDJSON `retry` field set the task's own retry policy, the fields given only; bad values exit 2 naming the
 * flag, and write nothing.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Task } from "../../mod.ts";
import { assertOneLine } from "../_helpers.ts";
import { TEST_HANDLERS, withFixture } from "./_fixture.ts";

describe("prismq enqueue --retry-*", () => {
  test("the flags set the task's own backoff, only the fields given; --help lists them", async () => {
    await withFixture(async ({ q, qJson }) => {
      const all = await qJson<Task>([
        "enqueue",
        "noop",
        "--max-attempts",
        "7",
        "--retry-delay",
        "30s",
        "--retry-multiplier",
        "1.5",
        "--retry-max-delay",
        "1h",
        "--retry-jitter",
        "0",
      ]);
      assert.equal(all.maxAttempts, 7);
      assert.deepEqual(all.retryPolicy, {
        initialDelayMs: 30_000,
        multiplier: 1.5,
        maxDelayMs: 3_600_000,
        jitter: 0,
      });
      const one = await qJson<Task>(["enqueue", "noop", "--retry-delay", "250ms"]);
      assert.deepEqual(one.retryPolicy, { initialDelayMs: 250 });
      assert.equal((await qJson<Task>(["enqueue", "noop"])).retryPolicy, null);
      const help = await q(["enqueue", "--help"]);
      for (const flag of ["--retry-delay", "--retry-multiplier", "--retry-max-delay", "--retry-jitter"]) {
        assert.match(help.stdout, new RegExp(`^  ${flag} `, "m"), flag);
      }
    });
  });

  test("a failed attempt waits the task's own backoff", async () => {
    await withFixture(async ({ q, qJson }) => {
      const task = await qJson<Task>([
        "enqueue",
        "boom",
        "--retry-delay",
        "2m",
        "--retry-jitter",
        "0",
        "--max-attempts",
        "3",
      ], { handlers: TEST_HANDLERS });
      const run = await q(["run", "--until-empty"], { handlers: TEST_HANDLERS });
      assert.equal(run.code, 0, run.stderr);
      const after = await qJson<Task>(["show", String(task.id)], { handlers: TEST_HANDLERS });
      assert.equal(after.status, "queued");
      assert.equal(after.attempts, 1);
      const wait = after.runAfter - after.updatedAt;
      assert.ok(Math.abs(wait - 120_000) < 1000, `waits ${wait} ms, not 2 min`);
    });
  });

  test("bad values exit 2 with one line naming the flag, and write nothing", async () => {
    await withFixture(async ({ q, inspect }) => {
      const cases: [string[], RegExp][] = [
        [["--retry-delay", "soon"], /Invalid duration 'soon' for --retry-delay/],
        [["--retry-delay", "-1s"], /--retry-delay/],
        [["--retry-max-delay", "5"], /Invalid duration '5' for --retry-max-delay/],
        [["--retry-multiplier", "0.5"], /Invalid value '0\.5' for --retry-multiplier: expected a number ≥ 1/],
        [["--retry-multiplier", "two"], /--retry-multiplier/],
        [["--retry-multiplier", "1e3"], /--retry-multiplier/],
        [["--retry-jitter", "1.5"], /Invalid value '1\.5' for --retry-jitter: expected a number from 0 to 1/],
        [["--retry-jitter", "-0.1"], /--retry-jitter/],
        [
          ["--retry-delay", "1h", "--retry-max-delay", "1m"],
          /--retry-max-delay \(1m\) is shorter than --retry-delay \(1h\)/,
        ],
      ];
      for (const [flags, message] of cases) {
        const r = await q(["enqueue", "noop", ...flags]);
        assert.equal(r.code, 2, `${flags.join(" ")}: ${r.stderr}`);
        assert.equal(r.stdout, "");
        assertOneLine(r.stderr, /^prismq enqueue: /, message);
      }
      const bulk = await q(["enqueue", "--ndjson", "-", "--retry-delay", "1s"], { stdin: "" });
      assert.equal(bulk.code, 2);
      assert.match(bulk.stderr, /remove --retry-delay/);
      assert.deepEqual(await inspect((queue) => queue.list()), []);
    });
  });

  test("an NDJSON line's retry field sets the task's backoff; a bad one is reported with its line", async () => {
    await withFixture(async ({ q, qJson }) => {
      const lines = [
        { type: "noop", retry: { initialDelayMs: 5000, multiplier: 3 } },
        { type: "noop", retry: { jitter: 2 } },
        { type: "noop", retry: { delay: 1 } },
        { type: "noop", retry: "fast" },
      ].map((line) => JSON.stringify(line)).join("\n");
      const r = await q(["enqueue", "--ndjson", "-", "--json"], { stdin: lines });
      assert.equal(r.code, 2, r.stderr);
      const summary = JSON.parse(r.stdout) as {
        enqueued: number;
        invalid: { line: number; error: string }[];
      };
      assert.equal(summary.enqueued, 1);
      assert.deepEqual(summary.invalid.map((bad) => bad.line), [2, 3, 4]);
      assert.match(summary.invalid[0]!.error, /retry\.jitter must be between 0 and 1/);
      assert.match(summary.invalid[1]!.error, /retry\.delay is not a retry option/);
      const [task] = await qJson<Task[]>(["list"]);
      assert.deepEqual(task!.retryPolicy, { initialDelayMs: 5000, multiplier: 3 });
    });
  });
});
