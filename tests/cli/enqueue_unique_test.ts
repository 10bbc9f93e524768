/**
 * `prismq enqueue --unique <key> [--unique-for <duration>]`, in NDJSON lines too, and what `show` and
 * `retry` do with unique keys (`src/cli/commands/enqueue.ts`).
 *
 * The commands run as functions against an in-memory `CliIo` and a real database file.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { EnqueuedTask } from "../../mod.ts";
import { assertOneLine } from "../_helpers.ts";
import { withFixture } from "./_fixture.ts";

describe("prismq enqueue --unique", () => {
  test("a key held while active: a second enqueue adds nothing and names the holder; once it is cancelled, one goes in", async () => {
    await withFixture(async ({ q, qJson, inspect }) => {
      const first = await qJson<EnqueuedTask>(["enqueue", "noop", "--unique", "sync:42"]);
      assert.deepEqual([first.created, first.uniqueKey, first.uniqueForMs], [true, "sync:42", null]);
      const again = await q(["enqueue", "noop", '{"sleepMs": 3}', "--unique", "sync:42"]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stderr, "", "another payload is what a unique key is for: no warning");
      assert.equal(
        again.stdout,
        `Task ${first.id} (noop) holds the unique key 'sync:42' while it is queued or running; it is queued. ` +
          "Nothing was added.\n",
      );
      const matched = await qJson<EnqueuedTask>(["enqueue", "noop", "--unique", "sync:42"]);
      assert.deepEqual([matched.id, matched.created, matched.matchedKey], [first.id, false, "unique"]);
      assert.equal((await inspect((queue) => queue.list())).length, 1);

      assert.equal((await q(["cancel", String(first.id)])).code, 0);
      const second = await qJson<EnqueuedTask>(["enqueue", "noop", "--unique", "sync:42"]);
      assert.equal(second.created, true);
      const retry = await q(["retry", String(first.id)]);
      assert.equal(retry.code, 1);
      assertOneLine(
        retry.stderr,
        new RegExp(`Cannot retry task ${first.id}: its unique key "sync:42" is held by task ${second.id}`),
      );
      const show = await q(["show", String(second.id)]);
      assert.match(show.stdout, /unique key\s+sync:42 \(while queued or running\)/);
    });
  });

  test("--unique-for holds the key for a window from the first task's creation, finished or not", async () => {
    await withFixture(async ({ q, qJson }) => {
      const first = await qJson<EnqueuedTask>([
        "enqueue",
        "noop",
        "--unique",
        "digest:7",
        "--unique-for",
        "10m",
      ]);
      assert.deepEqual([first.created, first.uniqueForMs], [true, 600_000]);
      assert.equal((await q(["cancel", String(first.id)])).code, 0);
      const again = await q(["enqueue", "noop", "--unique", "digest:7", "--unique-for", "10m"]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(
        again.stdout,
        new RegExp(
          `^Task ${first.id} \\(noop\\) holds the unique key 'digest:7' until .*; it is cancelled\\.`,
        ),
      );
      const show = await q(["show", String(first.id)]);
      assert.match(show.stdout, /unique key\s+digest:7 \(until /);
    });
  });

  test("bad --unique flags exit 2 with one line saying what to give, and write nothing", async () => {
    await withFixture(async ({ q, inspect }) => {
      const cases: [string[], RegExp][] = [
        [["--unique", ""], /The key given with --unique is empty/],
        [
          ["--unique-for", "10m"],
          /--unique-for says how long a --unique key is held: give --unique <key> too/,
        ],
        [["--unique", "k", "--unique-for", "0s"], /--unique-for must be longer than 0/],
        [["--unique", "k", "--unique-for", "soon"], /Invalid duration 'soon' for --unique-for/],
        [["--unique", "x".repeat(1025)], /unique\.key must be a string of 1 to 1024 characters/],
      ];
      for (const [flags, message] of cases) {
        const r = await q(["enqueue", "noop", ...flags]);
        assert.equal(r.code, 2, `${flags.join(" ")}: ${r.stderr}`);
        assert.equal(r.stdout, "");
        assertOneLine(r.stderr, /^prismq enqueue: /, message);
      }
      const bulk = await q(["enqueue", "--ndjson", "t.ndjson", "--unique", "k"], {
        files: { "t.ndjson": "" },
      });
      assert.equal(bulk.code, 2);
      assertOneLine(bulk.stderr, /--ndjson takes every task from the file; remove --unique/);
      assert.deepEqual(await inspect((queue) => queue.list()), []);
    });
  });

  test("NDJSON lines take a unique object; lines whose key is held are counted as existing, bad ones reported", async () => {
    await withFixture(async ({ q, inspect }) => {
      const lines = [
        { type: "noop", unique: { key: "a", while: "active" } },
        { type: "noop", unique: { key: "a", while: "active" } },
        { type: "noop", unique: { key: "b", forMs: 60_000 } },
        { type: "noop", unique: { key: "b", forMs: 60_000 } },
        { type: "noop", unique: { key: "c" } },
        { type: "noop", unique: { key: "d", while: "done" } },
      ].map((line) => JSON.stringify(line)).join("\n") + "\n";
      const r = await q(["enqueue", "--ndjson", "t.ndjson"], { files: { "t.ndjson": lines } });
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stdout,
        /Enqueued 2 tasks from 6 lines \(2 already existed with their idempotency or unique keys\)/,
      );
      assert.match(r.stderr, /line 5: .*unique needs a scope: while: "active" or forMs/);
      assert.match(r.stderr, /line 6: .*unique\.while must be "active", got "done"/);
      assert.equal((await inspect((queue) => queue.list())).length, 2);
    });
  });
});
