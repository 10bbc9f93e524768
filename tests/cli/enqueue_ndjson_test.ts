/**
 * `prismq enqueue --ndjson` (`src/cli/commands/enqueue_ndjson.ts`): bulk loads, bad lines, signals.
 *
 * The commands run as functions against an in-memory `CliIo` and a real database file.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import { defineHandler, type Task } from "../../mod.ts";
import { handlers } from "../../handlers/mod.ts";
import { main } from "../../src/cli/main.ts";
import { fakeIo } from "../_cli.ts";
import { assertOneLine, deferred, within } from "../_helpers.ts";
import { withFixture } from "./_fixture.ts";

describe("prismq enqueue --ndjson", () => {
  /** Good lines with bad ones among them; the bad ones' line numbers and what their errors say. */
  function bulkFile(good: number) {
    const lines: string[] = [];
    const bad = new Map<number, RegExp>();
    const push = (text: string, expected?: RegExp) => {
      lines.push(text);
      if (expected) bad.set(lines.length, expected);
    };
    for (let i = 0; i < good; i++) {
      push(JSON.stringify({ type: "noop", payload: { sleepMs: i % 7 } }));
      if (i === 3) push('{"type": "noop", "payload": {', /^invalid JSON/);
      if (i === 10) {
        push(JSON.stringify({ type: "noop", payload: {}, colour: "red" }), /^unknown field 'colour'$/);
      }
      if (i === 500) {
        push(JSON.stringify({ type: "send_sms", payload: {} }), /No handler registered .*'send_sms'.*'noop'/);
      }
      if (i === 999) {
        push(JSON.stringify({ type: "noop", payload: { sleepMs: 99_999 } }), /sleepMs: must be at most/);
      }
      if (i === 1000) {
        push(JSON.stringify({ type: "noop", payload: { sleepMs: "x" } }), /sleepMs: must be a number/);
      }
      if (i === 1001) push(JSON.stringify({ type: "noop", priority: "high" }), /^priority: /);
      if (i === 1002) push(JSON.stringify({ type: "noop", delayMs: "5s" }), /^delayMs: /);
      if (i === 1003) push(JSON.stringify({ type: 42 }), /^type: /);
      if (i === 1004) push(JSON.stringify({ payload: {} }), /type/);
      if (i === 1005) push("[1, 2]", /type|object/i);
      if (i === 1006) push("42", /expected a JSON object/);
      if (i === 1007) {
        push(JSON.stringify({ type: "noop", maxAttempts: 0 }), /maxAttempts must be a whole number/);
      }
      if (i === 1008) push(JSON.stringify({ type: "noop", runAt: "whenever" }), /runAt must be/);
      if (i === 1009) push(JSON.stringify({ type: "noop", delayMs: -5 }), /delayMs must be a number ≥ 0/);
      if (i === 1010) push("");
    }
    return { text: lines.join("\n") + "\n", lines: lines.length, bad };
  }

  test("lines of just type and payload take the short check; anything more or less, the schema's", async () => {
    await withFixture(async ({ q, qJson }) => {
      const lines = [
        '{"type": "noop"}',
        '{"payload": {"sleepMs": 1}, "type": "noop"}',
        '{"type": "noop", "__proto__": {"priority": 1}}',
        '{"type": "noop", "payload": {}, "constructor": 1}',
        '{"type": ["noop"], "payload": {}}',
        '{"payload": {}}',
        "[]",
        "null",
      ].join("\n");
      const r = await q(["enqueue", "--ndjson", "-", "--json"], { stdin: lines });
      assert.equal(r.code, 2, r.stderr);
      const summary = JSON.parse(r.stdout) as {
        enqueued: number;
        invalid: { line: number; error: string }[];
      };
      assert.equal(summary.enqueued, 2);
      assert.deepEqual(summary.invalid.map((bad) => [bad.line, bad.error]), [
        [3, "unknown field '__proto__'"],
        [4, "unknown field 'constructor'"],
        [5, "type: Invalid type: Expected string but received Array"],
        [6, "missing field 'type'"],
        [7, "missing field 'type'"],
        [8, 'expected a JSON object with a "type", got null'],
      ]);
      const tasks = await qJson<Task[]>(["list"]);
      assert.deepEqual(tasks.map((t) => [t.priority, t.payload]).reverse(), [[100, {}], [100, {
        sleepMs: 1,
      }]]);
    });
  });

  test("a payload check that throws a non-Error marks its line bad; the rest of the batch is written", async () => {
    await withFixture(async ({ q, qJson }) => {
      const picky = defineHandler({
        type: "picky",
        schema: v.pipe(
          v.object({ ok: v.boolean() }),
          v.check((payload) => {
            // deno-lint-ignore no-throw-literal
            if (!payload.ok) throw { reason: "not ok" };
            return true;
          }),
        ),
        handle() {},
      });
      const lines = [
        { type: "noop" },
        { type: "picky", payload: { ok: false } },
        { type: "noop", maxAttempts: 0 },
        { type: "picky", payload: { ok: true } },
      ].map((line) => JSON.stringify(line)).join("\n");
      const r = await q(["enqueue", "--ndjson", "-", "--json"], {
        stdin: lines,
        handlers: [...handlers, picky],
      });
      assert.equal(r.code, 2, r.stderr);
      const summary = JSON.parse(r.stdout) as { enqueued: number; invalid: { line: number }[] };
      assert.equal(summary.enqueued, 2);
      assert.deepEqual(summary.invalid.map((bad) => bad.line), [2, 3]);
      const stored = await qJson<Task[]>(["list"], { handlers: [...handlers, picky] });
      assert.deepEqual(stored.map((t) => t.type).sort(), ["noop", "picky"]);
    });
  });

  test("a batch the database refuses still reports the bad lines found in it, then fails with exit 1", async () => {
    await withFixture(async ({ q }) => {
      const anything = defineHandler({ type: "anything", schema: v.unknown(), handle() {} });
      // Deeper than SQLite's JSON parser goes: valid JSON to JavaScript, refused by the payload CHECK.
      let deep: unknown = 1;
      for (let i = 0; i < 1_100; i++) deep = [deep];
      const lines = [
        JSON.stringify({ type: "noop" }),
        "{bad json",
        JSON.stringify({ type: "noop", maxAttempts: 0 }),
        JSON.stringify({ type: "anything", payload: deep }),
      ].join("\n");
      const r = await q(["enqueue", "--ndjson", "-"], { stdin: lines, handlers: [...handlers, anything] });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^line 2: invalid JSON/m);
      assert.match(r.stderr, /^line 3: maxAttempts must be/m);
      assert.equal((await q(["list", "--json"])).stdout.trim(), "[]", "nothing of the batch was written");
    });
  });

  test("bad lines are reported with their numbers, exit 2; good lines are written, bad ones not", async () => {
    await withFixture(async ({ q, qJson, inspect }) => {
      await q(["enqueue", "noop", "--key", "already-there"]);
      const { text, lines, bad } = bulkFile(2500);
      const extra = [
        JSON.stringify({
          type: "noop",
          payload: { sleepMs: 1 },
          priority: 7,
          delayMs: 60_000,
          maxAttempts: 2,
          idempotencyKey: "with-options",
          timeoutMs: 1500,
        }),
        JSON.stringify({ type: "noop", runAt: "2030-01-31T09:00:00Z", idempotencyKey: "at" }),
        JSON.stringify({ type: "noop", idempotencyKey: "already-there" }),
      ];
      const file = text + extra.join("\n") + "\n";
      const r = await q(["enqueue", "--ndjson", "tasks.ndjson"], { files: { "tasks.ndjson": file } });
      assert.equal(r.code, 2, r.stderr);

      const reported = r.stderr.trimEnd().split("\n").map((line) => {
        const match = /^line (\d+): (.+)$/.exec(line);
        assert.ok(match, `not a 'line N: error' line: ${line}`);
        return [Number(match[1]), match[2]] as const;
      });
      assert.deepEqual(reported.map(([n]) => n), [...bad.keys()]);
      for (const [n, error] of reported) assert.match(error, bad.get(n)!, `line ${n}`);
      assert.equal(
        r.stdout,
        `Enqueued 2,502 tasks from ${(lines + 3).toLocaleString("en-US")} lines (1 already existed with ` +
          `their idempotency or unique keys); ${bad.size} bad lines were skipped.\n`,
      );

      const status = await qJson<{ counts: Record<string, number>; byType: Record<string, unknown> }>([
        "status",
      ]);
      assert.equal(status.counts.queued, 1 + 2500 + 2);
      assert.deepEqual(Object.keys(status.byType), ["noop"]);
      await inspect(async (queue) => {
        const all = await queue.list({ limit: 10_000 });
        assert.equal(all.length, 2503);
        assert.ok(all.every((task) => task.type === "noop"));
        assert.ok(
          all.every((t) => [0, 1, 2, 3, 4, 5, 6].includes((t.payload as { sleepMs?: number }).sleepMs ?? 0)),
        );
        const withOptions = all.find((t) => t.idempotencyKey === "with-options")!;
        assert.equal(withOptions.priority, 7);
        assert.equal(withOptions.runAfter - withOptions.createdAt, 60_000);
        assert.equal(withOptions.maxAttempts, 2);
        assert.equal(withOptions.timeoutMs, 1500);
        assert.deepEqual(withOptions.payload, { sleepMs: 1 });
        assert.equal(all.find((t) => t.idempotencyKey === "at")!.runAfter, Date.UTC(2030, 0, 31, 9));
      });
    });
  });

  test("--json prints {lines, enqueued, existing, invalid: [{line, error}]}", async () => {
    await withFixture(async ({ q, inspect }) => {
      await q(["enqueue", "noop", "--key", "k1"]);
      const file = [
        '{"type": "noop"}',
        '{"type": "noop", "idempotencyKey": "k1"}',
        "{nope",
        '{"type": "noop", "payload": {"sleepMs": -1}}',
        "",
        '{"type": "noop", "payload": {"sleepMs": 3}}',
      ].join("\n");
      const r = await q(["enqueue", "--ndjson", "-", "--json"], { stdin: file });
      assert.equal(r.code, 2);
      const summary = JSON.parse(r.stdout);
      assert.deepEqual(Object.keys(summary).sort(), ["enqueued", "existing", "invalid", "lines"]);
      assert.equal(summary.lines, 6);
      assert.equal(summary.enqueued, 2);
      assert.equal(summary.existing, 1);
      assert.deepEqual(summary.invalid.map((bad: { line: number }) => bad.line), [3, 4]);
      for (const bad of summary.invalid) assert.deepEqual(Object.keys(bad).sort(), ["error", "line"]);
      assert.match(summary.invalid[0].error, /^invalid JSON/);
      assert.match(summary.invalid[1].error, /sleepMs: must be at least 0/);
      assert.equal((await inspect((queue) => queue.list())).length, 3);
    });
  });

  test("a line without a type, or not an object, is not reported as having an unknown field 'type'", async () => {
    await withFixture(async ({ q }) => {
      const stdin = ['{"payload": {"sleepMs": 1}}', "[1, 2]", '{"type": "noop"}'].join("\n");
      const r = await q(["enqueue", "--ndjson", "-"], { stdin });
      assert.equal(r.code, 2);
      const [first, second, ...rest] = r.stderr.trimEnd().split("\n");
      assert.deepEqual(rest, []);
      // 'type' is the one required field, and it is missing: the message must not call it unknown.
      assert.match(first, /^line 1: .*type/);
      assert.doesNotMatch(first, /unknown field/);
      assert.match(second, /^line 2: /);
      assert.doesNotMatch(second, /unknown field/);
    });
  });

  test("from standard input, all good: exit 0", async () => {
    await withFixture(async ({ q, qJson }) => {
      const stdin = Array.from({ length: 5 }, (_, i) => JSON.stringify({ type: "noop", priority: i })).join(
        "\r\n",
      );
      const r = await q(["enqueue", "--ndjson", "-"], { stdin });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      assert.equal(r.stdout, "Enqueued 5 tasks from 5 lines.\n");
      const tasks = await qJson<Task[]>(["list"]);
      assert.deepEqual(tasks.map((t) => t.priority).sort(), [0, 1, 2, 3, 4]);
    });
  });

  test("a signal while input is awaited stops it: exit 1, saying which lines went in and where to resume", async () => {
    await withFixture(async ({ dbPath, inspect }) => {
      const line = (n: number) =>
        new TextEncoder().encode(JSON.stringify({ type: "noop", payload: { sleepMs: n } }));
      const cases = [[0, "SIGTERM"], [10_000, "SIGINT"]] as const;
      for (const [written, signal] of cases) {
        const io = fakeIo();
        const awaited = deferred();
        // Whole batches and three lines more, then input that never comes: a pipe whose writer paused.
        io.readLines = async function* () {
          yield Array.from({ length: written + 3 }, (_, i) => line(i + 1));
          awaited.resolve();
          await new Promise(() => {});
        };
        const load = main(["enqueue", "--ndjson", "-", "--json", "--db", dbPath], io, handlers);
        await awaited.promise;
        io.fire(signal);
        assert.equal(await within(30_000, "the stopped load", load), 1, io.err);
        assert.deepEqual(JSON.parse(io.out), {
          lines: written,
          enqueued: written,
          existing: 0,
          invalid: [],
          interrupted: signal,
          resumeFromLine: written + 1,
        });
        assertOneLine(
          io.err,
          written === 0
            ? /^prismq enqueue: SIGTERM: stopped\. Nothing was written; run it again to start from line 1\.\n$/
            : /^prismq enqueue: SIGINT: stopped\. Lines 1 to 10,000 were written \(10,000 tasks\); nothing from line 10,001 on was\. Resume from line 10,001\.\n$/,
        );
        assert.equal(io.signalListeners, 0);
        assert.equal((await inspect((queue) => queue.stats())).counts.queued, written);
      }
    });
  });

  test("a missing file, or --ndjson with a type or single-task options, exits 2", async () => {
    await withFixture(async ({ q }) => {
      const missing = await q(["enqueue", "--ndjson", "nope.ndjson"]);
      assert.equal(missing.code, 2);
      assertOneLine(missing.stderr, /The NDJSON file 'nope\.ndjson' does not exist/);
      const withType = await q(["enqueue", "noop", "--ndjson", "-"], { stdin: '{"type": "noop"}' });
      assert.equal(withType.code, 2);
      assertOneLine(withType.stderr, /remove 'noop'/);
      const withKey = await q(["enqueue", "--ndjson", "-", "--key", "k"], { stdin: '{"type": "noop"}' });
      assert.equal(withKey.code, 2);
      assertOneLine(withKey.stderr, /remove --key/);
    });
  });
});
