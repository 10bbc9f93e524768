/**
 * `prismq enqueue` of one task (`src/cli/commands/enqueue.ts`).
 *
 * The commands run as functions against an in-memory `CliIo` and a real database file.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Task } from "../../mod.ts";
import { cli } from "../_cli.ts";
import { assertOneLine, TASK_FIELDS } from "../_helpers.ts";
import { LOOSE_HANDLERS, TEST_HANDLERS, withFixture } from "./_fixture.ts";

describe("prismq enqueue", () => {
  test("a valid task: exit 0, one human line, and the task in the database", async () => {
    await withFixture(async ({ q, inspect }) => {
      const r = await q(["enqueue", "noop", '{"sleepMs": 5}']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      assert.equal(r.stdout, "Enqueued task 1 (noop), runnable now.\n");
      const task = await inspect((queue) => queue.get(1));
      assert.equal(task?.type, "noop");
      assert.deepEqual(task?.payload, { sleepMs: 5 });
      assert.equal(task?.status, "queued");
    });
  });

  test("--json prints the whole task", async () => {
    await withFixture(async ({ qJson }) => {
      const before = Date.now();
      const task = await qJson<Task>(["enqueue", "noop", '{"sleepMs": 5}']);
      const after = Date.now();
      assert.deepEqual(Object.keys(task).sort(), [...TASK_FIELDS, "created"].sort());
      assert.equal(task.id, 1);
      assert.equal(task.type, "noop");
      assert.deepEqual(task.payload, { sleepMs: 5 });
      assert.equal(task.status, "queued");
      assert.equal(task.priority, 100);
      assert.equal(task.attempts, 0);
      assert.equal(task.maxAttempts, 5);
      assert.equal(task.idempotencyKey, null);
      assert.equal(task.timeoutMs, null);
      assert.ok(task.runAfter >= before && task.runAfter <= after, `run_after ${task.runAfter} is not now`);
      assert.equal(task.runAfter, task.createdAt);
    });
  });

  test("without a payload the payload is {}", async () => {
    await withFixture(async ({ qJson }) => {
      const task = await qJson<Task>(["enqueue", "noop"]);
      assert.deepEqual(task.payload, {});
    });
  });

  test("malformed JSON exits 2 with one line, and writes nothing", async () => {
    await withFixture(async ({ q, inspect }) => {
      const r = await q(["enqueue", "noop", "{sleepMs: 5"]);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, "");
      assertOneLine(r.stderr, /^prismq enqueue: The payload is not valid JSON/);
      assert.deepEqual(await inspect((queue) => queue.list()), []);
    });
  });

  test("a payload that fails the schema exits 2 naming the field, and writes nothing", async () => {
    await withFixture(async ({ q, inspect }) => {
      for (
        const [payload, message] of [
          ['{"sleepMs": -1}', /sleepMs: must be at least 0/],
          ['{"sleepMs": "soon"}', /sleepMs: must be a number of milliseconds/],
          ['{"sleepMs": 1.5}', /sleepMs: must be a whole number/],
          ['{"sleepMs": 60001}', /sleepMs: must be at most 60000/],
        ] as const
      ) {
        const r = await q(["enqueue", "noop", payload]);
        assert.equal(r.code, 2, payload);
        assertOneLine(r.stderr, /Invalid payload for task type 'noop'/, message);
      }
      const extra = await q(["enqueue", "noop", '{"sleepMs": 1, "colour": "red"}']);
      assert.equal(extra.code, 2);
      assertOneLine(extra.stderr, /colour/);
      assert.deepEqual(await inspect((queue) => queue.list()), []);
    });
  });

  test("an unknown type exits 2 and lists the linked types", async () => {
    await withFixture(async ({ q, inspect }) => {
      const r = await q(["enqueue", "send_sms", "{}"], { handlers: TEST_HANDLERS });
      assert.equal(r.code, 2);
      assertOneLine(r.stderr, /send_sms/);
      for (const handler of TEST_HANDLERS) assert.match(r.stderr, new RegExp(`'${handler.type}'`));
      assert.deepEqual(await inspect((queue) => queue.list()), []);
    });
  });

  test("a missing type exits 2 and lists the linked types", async () => {
    const r = await cli(["enqueue"]);
    assert.equal(r.code, 2);
    assertOneLine(r.stderr, /Missing task type/, /noop/);
  });

  test("a duplicate --key exits 0, says the task already exists, and adds no row", async () => {
    await withFixture(async ({ q, qJson }) => {
      const first = await q([
        "enqueue",
        "noop",
        '{"sleepMs": 9, "extra": {"a": 1, "b": 2}}',
        "--key",
        "nightly",
      ], { handlers: LOOSE_HANDLERS });
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /^Enqueued task 1 /);
      // The same payload, its keys in another order: the same task, and nothing to warn about.
      const second = await q([
        "enqueue",
        "noop",
        '{"extra": {"b": 2, "a": 1}, "sleepMs": 9}',
        "--key",
        "nightly",
      ], { handlers: LOOSE_HANDLERS });
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.stderr, "");
      assert.match(second.stdout, /Task 1 \(noop\) already exists with key 'nightly'; it is queued/);
      assert.match(second.stdout, /Nothing was added/);
      const tasks = await qJson<Task[]>(["list"]);
      assert.equal(tasks.length, 1);
      assert.equal(tasks[0].idempotencyKey, "nightly");
    });
  });

  test("enqueue --json says whether the task was created or its key matched an existing one", async () => {
    await withFixture(async ({ qJson }) => {
      const created = await qJson<Task & { created: boolean }>(["enqueue", "noop", "--key", "k"]);
      assert.equal(created.created, true);
      assert.deepEqual(Object.keys(created).sort(), [...TASK_FIELDS, "created"].sort());
      const matched = await qJson<Task & { created: boolean }>(["enqueue", "noop", "--key", "k"]);
      assert.equal(matched.created, false);
      assert.equal(matched.id, created.id);
      assert.equal((await qJson<Task & { created: boolean }>(["enqueue", "noop"])).created, true);
    });
  });

  test("a key that matches a task with another payload or type: a warning on stderr, exit 0, nothing added", async () => {
    await withFixture(async ({ q, qJson }) => {
      await q(["enqueue", "noop", '{"sleepMs": 1}', "--key", "nightly"], { handlers: TEST_HANDLERS });
      for (const asJson of [false, true]) {
        const other = await q(
          ["enqueue", "noop", '{"sleepMs": 9}', "--key", "nightly", ...(asJson ? ["--json"] : [])],
        );
        assert.equal(other.code, 0, other.stderr);
        assertOneLine(
          other.stderr,
          /^prismq enqueue: warning: the key 'nightly' matched task 1, but its payload differs from the one given\. /,
          /Task 1 is unchanged and nothing was added; use another --key for a new task\.\n$/,
        );
        if (asJson) assert.equal(JSON.parse(other.stdout).created, false);
        else assert.match(other.stdout, /Task 1 \(noop\) already exists with key 'nightly'/);
      }
      const type = await q(["enqueue", "chatty", '{"word": "hi"}', "--key", "nightly"], {
        handlers: TEST_HANDLERS,
      });
      assert.equal(type.code, 0, type.stderr);
      assertOneLine(
        type.stderr,
        /matched task 1, but its type is 'noop', not 'chatty' and its payload differs from the one given\./,
      );
      const tasks = await qJson<Task[]>(["list"]);
      assert.deepEqual(tasks.map((t) => [t.type, t.payload]), [["noop", { sleepMs: 1 }]]);
    });
  });

  test("--delay, --run-at, --max-attempts, --priority and --timeout are parsed", async () => {
    await withFixture(async ({ q, qJson }) => {
      const delays: [string, number][] = [
        ["10m", 600_000],
        ["1h30m", 5_400_000],
        ["1.5s", 1500],
        [
          "500ms",
          500,
        ],
        ["2d", 172_800_000],
        ["0s", 0],
      ];
      for (const [text, ms] of delays) {
        const task = await qJson<Task>(["enqueue", "noop", "--delay", text]);
        assert.equal(task.runAfter - task.createdAt, ms, text);
      }
      const later = await q(["enqueue", "noop", "--delay", "10m"]);
      assert.match(later.stdout, /runnable at \d{4}-\d\d-\d\dT[\d:.]+Z \(in (9 min 59 s|10 min 0 s)\)\./);

      const at = await qJson<Task>(["enqueue", "noop", "--run-at", "2030-01-31T09:00:00Z"]);
      assert.equal(at.runAfter, Date.UTC(2030, 0, 31, 9, 0, 0));
      const offset = await qJson<Task>(["enqueue", "noop", "--run-at", "2030-01-31T10:00:00+01:00"]);
      assert.equal(offset.runAfter, Date.UTC(2030, 0, 31, 9, 0, 0));
      const millis = await qJson<Task>(["enqueue", "noop", "--run-at", "2030-01-31T09:00:00.250Z"]);
      assert.equal(millis.runAfter, Date.UTC(2030, 0, 31, 9, 0, 0, 250));

      const task = await qJson<Task>([
        "enqueue",
        "noop",
        "--max-attempts",
        "3",
        "--priority=-5",
        "--timeout",
        "2s",
      ]);
      assert.equal(task.maxAttempts, 3);
      assert.equal(task.priority, -5);
      assert.equal(task.timeoutMs, 2000);
      assert.equal((await qJson<Task>(["enqueue", "noop", "--priority", "7"])).priority, 7);
    });
  });

  test("--priority -1 is a negative priority, as written; a negative --delay is refused by name", async () => {
    await withFixture(async ({ q, qJson }) => {
      const task = await qJson<Task>(["enqueue", "noop", "--priority", "-1"]);
      assert.equal(task.priority, -1);
      const before = await q(["enqueue", "--priority", "-20", "noop", '{"sleepMs": 1}']);
      assert.equal(before.code, 0, before.stderr);
      assert.equal((await qJson<Task>(["show", "2"])).priority, -20);
      const delay = await q(["enqueue", "noop", "--delay", "-5s"]);
      assert.equal(delay.code, 2);
      assertOneLine(delay.stderr, /Invalid duration '-5s' for --delay/);
    });
  });

  test("invalid durations, times and numbers exit 2 with one line naming the flag, and write nothing", async () => {
    await withFixture(async ({ q, inspect }) => {
      const cases: [string[], RegExp][] = [
        [["--delay", "3x"], /Invalid duration '3x' for --delay/],
        [["--delay", "10"], /Invalid duration '10' for --delay/],
        [["--delay=-5s"], /Invalid duration '-5s' for --delay/],
        [["--delay", "-5s"], /--delay/],
        [["--delay", "5m30"], /Invalid duration '5m30'/],
        [["--delay", ""], /Invalid duration '' for --delay/],
        [["--timeout", "3x"], /Invalid duration '3x' for --timeout/],
        [["--timeout", "0s"], /--timeout must be longer than 0/],
        [["--run-at", "2030-01-31T09:00:00"], /Invalid time '2030-01-31T09:00:00' for --run-at.*zone/],
        [["--run-at", "2030-01-31"], /Invalid time '2030-01-31' for --run-at/],
        [["--run-at", "tomorrow"], /Invalid time 'tomorrow'/],
        [["--run-at", "2030-13-01T09:00:00Z"], /Invalid time '2030-13-01T09:00:00Z'/],
        [["--max-attempts", "2.5"], /Invalid value '2\.5' for --max-attempts/],
        [["--max-attempts", "0"], /Invalid value '0' for --max-attempts: expected a whole number from 1/],
        [["--max-attempts", "abc"], /--max-attempts/],
        [["--max-attempts", "1001"], /--max-attempts/],
        [["--priority", "1.5"], /Invalid value '1\.5' for --priority/],
        [["--priority", "high"], /--priority/],
        [["--priority", "1e3"], /--priority/],
        [["--priority", "2000000000"], /--priority/],
        [["--delay", "1m", "--run-at", "2030-01-31T09:00:00Z"], /--delay or --run-at, not both/],
        [["--key", ""], /key .*empty/],
      ];
      for (const [flags, message] of cases) {
        const r = await q(["enqueue", "noop", ...flags]);
        assert.equal(r.code, 2, `${flags.join(" ")}: ${r.stderr}`);
        assert.equal(r.stdout, "");
        assertOneLine(r.stderr, /^prismq enqueue: /, message);
      }
      assert.deepEqual(await inspect((queue) => queue.list()), []);
    });
  });

  test("the payload from --payload-file, from stdin with '-', and from --payload-file -", async () => {
    await withFixture(async ({ q, qJson }) => {
      const files = { "payload.json": '{\n  "sleepMs": 12\n}\n' };
      const fromFile = await qJson<Task>(["enqueue", "noop", "--payload-file", "payload.json"], { files });
      assert.deepEqual(fromFile.payload, { sleepMs: 12 });
      const fromStdin = await qJson<Task>(["enqueue", "noop", "-"], { stdin: '{"sleepMs": 34}' });
      assert.deepEqual(fromStdin.payload, { sleepMs: 34 });
      const fromDash = await qJson<Task>(["enqueue", "noop", "--payload-file", "-"], {
        stdin: '{"sleepMs": 56}\n',
      });
      assert.deepEqual(fromDash.payload, { sleepMs: 56 });

      const missing = await q(["enqueue", "noop", "--payload-file", "nope.json"]);
      assert.equal(missing.code, 2);
      assertOneLine(missing.stderr, /Cannot read the payload file 'nope\.json'/);
      const badFile = await q(["enqueue", "noop", "--payload-file", "bad.json"], {
        files: { "bad.json": "{oops" },
      });
      assert.equal(badFile.code, 2);
      assertOneLine(badFile.stderr, /The payload in 'bad\.json' is not valid JSON/);
      const badStdin = await q(["enqueue", "noop", "-"], { stdin: "{oops" });
      assert.equal(badStdin.code, 2);
      assertOneLine(badStdin.stderr, /The payload on standard input is not valid JSON/);
      const invalidStdin = await q(["enqueue", "noop", "-"], { stdin: '{"sleepMs": -3}' });
      assert.equal(invalidStdin.code, 2);
      assertOneLine(invalidStdin.stderr, /sleepMs: must be at least 0/);
      const both = await q(["enqueue", "noop", "{}", "--payload-file", "payload.json"], { files });
      assert.equal(both.code, 2);
      assertOneLine(both.stderr, /not both/);
      const extra = await q(["enqueue", "noop", "{", "}"]);
      assert.equal(extra.code, 2);
      assertOneLine(extra.stderr, /Unexpected argument '}'/);
      assert.equal((await qJson<Task[]>(["list"])).length, 3);
    });
  });
});
