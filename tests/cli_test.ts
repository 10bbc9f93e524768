/**
 * The `prismq` commands as functions: `main(argv, io, handlers)` against an in-memory `CliIo` (captured
 * output, files and standard input in memory, signals fired by the test) and a real database file.
 *
 * @module
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { defineHandler, type HandlerDefinition, Queue, QueueDatabase, type Task } from "../mod.ts";
import { handlers } from "../handlers/mod.ts";
import { COMMANDS, main } from "../src/cli/main.ts";
import { VERSION } from "../src/version.ts";
import { cli, type CliOptions, fakeIo, type Result } from "./_cli.ts";
import { makeTempDir, TASK_FIELDS, waitFor } from "./_helpers.ts";
import { MIGRATIONS } from "../src/store/sqlite/migrations.ts";

const LATEST_SCHEMA = MIGRATIONS[MIGRATIONS.length - 1].version;

// ---------------------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------------------
// Test-only handlers and fixtures

const boom = defineHandler({
  type: "boom",
  schema: v.object({}),
  description: "Always throws.",
  handle() {
    throw new Error("kaboom");
  },
});

const chatty = defineHandler({
  type: "chatty",
  schema: v.object({ word: v.string() }),
  description: "Writes one log line.",
  async handle(task, ctx) {
    await ctx.log("info", `said ${task.payload.word}`, { length: task.payload.word.length });
  },
});

/** The real linked handlers plus two of the tests' own. */
const TEST_HANDLERS: readonly HandlerDefinition[] = [...handlers, boom, chatty];

interface Fixture {
  dir: string;
  dbPath: string;
  /** Runs a command against the fixture's database (`--db` appended). */
  q(argv: string[], options?: CliOptions): Promise<Result>;
  /** Runs a command and parses its standard output as JSON, failing unless it exits 0. */
  qJson<T = unknown>(argv: string[], options?: CliOptions): Promise<T>;
  /** Opens the database directly for checks and set-up. */
  inspect<T>(fn: (queue: Queue, db: QueueDatabase) => Promise<T>): Promise<T>;
}

async function withFixture(fn: (fx: Fixture) => Promise<void>): Promise<void> {
  const { dir, remove } = makeTempDir("prismq-cli-");
  const dbPath = join(dir, "queue.db");
  const q = (argv: string[], options?: CliOptions) => cli([...argv, "--db", dbPath], options);
  const fx: Fixture = {
    dir,
    dbPath,
    q,
    async qJson<T>(argv: string[], options?: CliOptions) {
      const result = await q([...argv, "--json"], options);
      assert.equal(result.code, 0, `'${argv.join(" ")}' failed: ${result.stderr}`);
      return JSON.parse(result.stdout) as T;
    },
    async inspect(fn) {
      const db = new QueueDatabase(dbPath);
      try {
        await db.initializeSchema();
        return await fn(new Queue(db), db);
      } finally {
        db.close();
      }
    },
  };
  try {
    await fn(fx);
  } finally {
    remove();
  }
}

/** Exactly one line on stderr, and no stack trace. */
function assertOneLine(stderr: string, ...patterns: RegExp[]): void {
  assert.match(stderr, /^[^\n]+\n$/, `expected exactly one line on stderr, got ${JSON.stringify(stderr)}`);
  assert.doesNotMatch(stderr, /\bat .+:\d+:\d+/, "no stack trace");
  for (const pattern of patterns) assert.match(stderr, pattern);
}

/** One JSON object per line. */
function jsonLines(text: string): Record<string, unknown>[] {
  return text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
}

// deno-lint-ignore no-control-regex
const ANY_ESCAPE = /\x1b/;
// deno-lint-ignore no-control-regex
const SGR = /\x1b\[[0-9;]*m/;

// ---------------------------------------------------------------------------------------------------------

describe("prismq: version, help and usage errors", () => {
  test("--version, -V and version print the version and exit 0", async () => {
    for (const word of ["--version", "-V", "version"]) {
      const r = await cli([word]);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, `prismq ${VERSION}\n`);
      assert.equal(r.stderr, "");
    }
  });

  test("--help lists every command on stdout and exits 0", async () => {
    for (const word of ["--help", "-h", "help"]) {
      const r = await cli([word]);
      assert.equal(r.code, 0);
      assert.equal(r.stderr, "");
      assert.match(r.stdout, /^prismq .*\n\nUsage: prismq <command> \[options\]/);
      for (const command of COMMANDS) assert.match(r.stdout, new RegExp(`\\n  ${command.name} +\\S`));
      assert.match(r.stdout, /Exit codes: 0 success, 1 failure, 2 usage or validation error/);
    }
  });

  test("help <cmd> and <cmd> --help print that command's help and exit 0", async () => {
    for (const command of COMMANDS) {
      const viaHelp = await cli(["help", command.name]);
      assert.equal(viaHelp.code, 0, command.name);
      assert.equal(viaHelp.stdout, command.help + "\n");
      const viaFlag = await cli([command.name, "--help"]);
      assert.equal(viaFlag.code, 0, command.name);
      assert.equal(viaFlag.stdout, command.help + "\n");
      assert.match(viaFlag.stdout, /Usage:/);
    }
    const enqueue = await cli(["help", "enqueue"]);
    assert.match(enqueue.stdout, /--ndjson <file \| ->/);
    assert.match(enqueue.stdout, /--idempotency|--key <key>/);
  });

  test("no arguments: the overview on stderr, nothing on stdout, exit 2", async () => {
    const r = await cli([]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /Usage: prismq <command>/);
    for (const command of COMMANDS) assert.match(r.stderr, new RegExp(`\\n  ${command.name} `));
  });

  test("an unknown command exits 2 with one line listing the commands", async () => {
    const r = await cli(["frobnicate"]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assertOneLine(r.stderr, /^prismq: Unknown command 'frobnicate'\./, /Commands: run, enqueue, handlers/);
  });

  test("an unknown option exits 2 with one line naming it and the command", async () => {
    await withFixture(async ({ q, dbPath }) => {
      for (
        const [argv, name] of [
          [["status", "--bogus"], "--bogus"],
          [["enqueue", "noop", "--colour", "red"], "--colour"],
          [["run", "--fast"], "--fast"],
          [["list", "-x"], "-x"],
        ] as const
      ) {
        const r = await q([...argv]);
        assert.equal(r.code, 2, argv.join(" "));
        assert.equal(r.stdout, "");
        assertOneLine(r.stderr, new RegExp(`^prismq ${argv[0]}: .*'${name}'`), /--help/);
      }
      assert.equal(existsSync(dbPath), false, "a usage error opens no database");
    });
  });

  test("an option that needs a value and has none exits 2", async () => {
    const r = await cli(["list", "--limit"]);
    assert.equal(r.code, 2);
    assertOneLine(r.stderr, /--limit/);
  });
});

describe("prismq handlers", () => {
  test("--json describes every linked handler, sorted by type, with its payload fields", async () => {
    const r = await cli(["handlers", "--json"], { handlers: TEST_HANDLERS });
    assert.equal(r.code, 0);
    const described = JSON.parse(r.stdout) as {
      type: string;
      version: string;
      description: string;
      timeoutMs: number | null;
      fields: { name: string; type: string; required: boolean }[];
    }[];
    assert.deepEqual(described.map((h) => h.type), TEST_HANDLERS.map((h) => h.type).sort());
    const noop = described.find((h) => h.type === "noop")!;
    assert.equal(noop.version, "1.0.0");
    assert.match(noop.description, /\S/);
    assert.equal(noop.timeoutMs, null);
    assert.deepEqual(noop.fields, [{ name: "sleepMs", type: "number (integer)", required: false }]);
    assert.deepEqual(described.find((h) => h.type === "chatty")!.fields, [
      { name: "word", type: "string", required: true },
    ]);
  });

  test("as text: a table with one row per handler", async () => {
    const r = await cli(["handlers"]);
    assert.equal(r.code, 0);
    const lines = r.stdout.trimEnd().split("\n");
    assert.match(lines[0], /^TYPE +VERSION +DESCRIPTION +PAYLOAD$/);
    assert.equal(lines.length, handlers.length + 1);
    assert.ok(lines.some((line) => /^noop +1\.0\.0 .*sleepMs\?: number \(integer\)$/.test(line)));
  });
});

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
      const task = await qJson<Task>(["enqueue", "noop", '{"sleepMs": 5}']);
      assert.deepEqual(Object.keys(task).sort(), TASK_FIELDS);
      assert.equal(task.id, 1);
      assert.equal(task.type, "noop");
      assert.deepEqual(task.payload, { sleepMs: 5 });
      assert.equal(task.status, "queued");
      assert.equal(task.priority, 100);
      assert.equal(task.attempts, 0);
      assert.equal(task.maxAttempts, 5);
      assert.equal(task.idempotencyKey, null);
      assert.equal(task.timeoutMs, null);
      assert.ok(Math.abs(task.runAfter - Date.now()) < 10_000);
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
      const first = await q(["enqueue", "noop", "--key", "nightly"]);
      assert.equal(first.code, 0);
      assert.match(first.stdout, /^Enqueued task 1 /);
      const second = await q(["enqueue", "noop", '{"sleepMs": 9}', "--key", "nightly"]);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.stderr, "");
      assert.match(second.stdout, /Task 1 \(noop\) already exists with key 'nightly'; it is queued/);
      assert.match(second.stdout, /Nothing was added/);
      const again = await qJson<Task>(["enqueue", "noop", "--key", "nightly"]);
      assert.equal(again.id, 1);
      assert.deepEqual(again.payload, {});
      const tasks = await qJson<Task[]>(["list"]);
      assert.equal(tasks.length, 1);
      assert.equal(tasks[0].idempotencyKey, "nightly");
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
          `their idempotency keys); ${bad.size} bad lines were skipped.\n`,
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
        "Worker w-test started: concurrency 4, strategy priority, types all.",
      );
      const completed = lines.filter((line) => / completed task \d+ \(noop\) in \d+ ms$/.test(line));
      assert.equal(completed.length, 5);
      for (const line of completed) assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /);
      assert.equal(
        lines.at(-1),
        "Worker w-test stopped: 5 completed, 0 failed, 0 retried, 0 lost their lease, 0 handed back.",
      );
      const status = await qJson<{ counts: Record<string, number> }>(["status"]);
      assert.deepEqual(status.counts, { queued: 0, running: 0, completed: 5, failed: 0, cancelled: 0 });
      assert.deepEqual(await qJson(["workers"]), [], "the worker unregisters when it stops");
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
        assert.ok(retrying!.runAfter > Date.now() - 100);
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
      await q(["enqueue", "noop", '{"sleepMs": 5000}']);
      await q(["enqueue", "noop", '{"sleepMs": 5000}']);
      const io = fakeIo();
      const run = main(
        ["run", "--grace", "100ms", "--json", "--worker-id", "sig", "--db", dbPath],
        io,
        handlers,
      );
      await waitFor(
        () => jsonLines(io.out).filter((e) => e.event === "claimed").length === 2,
        10_000,
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

      const signalled = Date.now();
      io.fire("SIGTERM");
      const code = await run;
      assert.equal(code, 0, io.err);
      assert.ok(Date.now() - signalled < 3000, "the 5 s handlers were stopped after the grace period");
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
      await q(["enqueue", "noop", '{"sleepMs": 20000}']);
      const io = fakeIo();
      const run = main(["run", "--grace", "60s", "--db", dbPath], io, handlers);
      await waitFor(async () => (await qJson<Task[]>(["list", "--status", "running"])).length === 1);
      io.fire("SIGINT");
      await waitFor(() => io.out.includes("SIGINT: finishing running tasks (up to 1 min 0 s)"));
      const signalled = Date.now();
      io.fire("SIGINT");
      assert.equal(await run, 0, io.err);
      assert.ok(Date.now() - signalled < 3000);
      assert.match(io.out, /SIGINT again: handing running tasks back to the queue now\./);
      assert.match(io.out, / handed back task 1 \(noop\) to the queue\n/);
      assert.match(io.out, /0 completed, 0 failed, 0 retried, 0 lost their lease, 1 handed back\.\n$/);
      const [task] = await qJson<Task[]>(["list"]);
      assert.equal(task.status, "queued");
      assert.equal(task.attempts, 0);
    });
  });

  for (const order of [["SIGPIPE", "SIGTERM"], ["SIGTERM", "SIGPIPE"]] as const) {
    test(`a lost stdout (SIGPIPE) stops gracefully and never counts as a second signal: ${order.join(" then ")}`, async () => {
      await withFixture(async ({ q, qJson, dbPath }) => {
        await q(["enqueue", "noop", '{"sleepMs": 1200}']);
        const io = fakeIo();
        const run = main(["run", "--grace", "30s", "--json", "--db", dbPath], io, handlers);
        await waitFor(() => jsonLines(io.out).some((e) => e.event === "claimed"), 10_000, "the claim");
        const signalled = Date.now();
        for (const signal of order) io.fire(signal);
        assert.equal(await run, 0, io.err);
        assert.ok(Date.now() - signalled >= 800, "the running handler was left to finish");
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
      await q(["enqueue", "noop", '{"sleepMs": 300}']);
      const io = fakeIo();
      const run = main(
        ["run", "--concurrency", "1", "--prefetch", "0", "--json", "--db", dbPath],
        io,
        handlers,
      );
      await waitFor(() => jsonLines(io.out).some((e) => e.event === "claimed"), 10_000, "the claim");
      await q(["enqueue", "noop"]);
      io.fire("SIGPIPE");
      assert.equal(await run, 0, io.err);
      const tasks = await qJson<Task[]>(["list"]);
      assert.deepEqual(tasks.map((t) => t.status).sort(), ["completed", "queued"]);
    });
  });

  test("cancel of a running task: the worker stops its handler and reports the lost lease", async () => {
    await withFixture(async ({ q, qJson, dbPath }) => {
      await q(["enqueue", "noop", '{"sleepMs": 5000}']);
      const io = fakeIo();
      const started = Date.now();
      const run = main(["run", "--until-empty", "--json", "--db", dbPath], io, handlers);
      await waitFor(() => jsonLines(io.out).some((e) => e.event === "claimed"), 10_000, "the claim");
      const cancel = await q(["cancel", "1"]);
      assert.equal(cancel.code, 0, cancel.stderr);
      assert.equal(await run, 0, io.err);
      assert.ok(Date.now() - started < 4500, "the 5 s handler was stopped");
      const lost = jsonLines(io.out).find((e) => e.event === "lease-lost");
      assert.equal(lost?.reason, "Task 1 was cancelled.");
      assert.equal(jsonLines(io.out).some((e) => e.event === "completed"), false);
      assert.equal((await qJson<Task>(["show", "1"])).status, "cancelled");
    });
  });

  test("--timeout on a task: the attempt is aborted and fails with the timeout", async () => {
    await withFixture(async ({ q, qJson }) => {
      await q(["enqueue", "noop", '{"sleepMs": 5000}', "--timeout", "100ms", "--max-attempts", "1"]);
      const started = Date.now();
      const r = await q(["run", "--until-empty"]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(Date.now() - started < 4000);
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

describe("prismq status", () => {
  test("an empty database: all five counts, empty byType, null oldest wait, no workers", async () => {
    await withFixture(async ({ qJson }) => {
      const status = await qJson(["status"]);
      assert.deepEqual(status, {
        counts: { queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 },
        byType: {},
        oldestQueuedAgeMs: null,
        lastMinute: { completed: 0, failed: 0 },
        workers: [],
      });
    });
  });

  test("counts by status and type, the oldest runnable wait, and the last minute", async () => {
    await withFixture(async ({ q, qJson, dbPath }) => {
      const opts = { handlers: TEST_HANDLERS };
      await q(["enqueue", "noop"], opts);
      await q(["enqueue", "noop", "--delay", "1h"], opts);
      await q(["enqueue", "boom", "--max-attempts", "1"], opts);
      const cancelled = await qJson<Task>(["enqueue", "chatty", '{"word": "x"}', "--delay", "1h"], opts);
      await q(["cancel", String(cancelled.id)]);
      assert.equal((await q(["run", "--until-empty"], opts)).code, 0);

      type Status = {
        counts: Record<string, number>;
        byType: Record<string, Record<string, number>>;
        oldestQueuedAgeMs: number | null;
        lastMinute: { completed: number; failed: number };
        workers: unknown[];
      };
      const before = await qJson<Status>(["status"]);
      assert.deepEqual(before.counts, { queued: 1, running: 0, completed: 1, failed: 1, cancelled: 1 });
      assert.equal(before.oldestQueuedAgeMs, null, "a task delayed by an hour is not waiting yet");
      assert.deepEqual(before.lastMinute, { completed: 1, failed: 1 });
      assert.deepEqual(before.byType, {
        noop: { queued: 1, running: 0, completed: 1, failed: 0, cancelled: 0 },
        boom: { queued: 0, running: 0, completed: 0, failed: 1, cancelled: 0 },
        chatty: { queued: 0, running: 0, completed: 0, failed: 0, cancelled: 1 },
      });
      assert.deepEqual(before.workers, []);

      await q(["enqueue", "noop"]);
      const after = await qJson<Status>(["status"]);
      assert.equal(after.counts.queued, 2);
      assert.equal(typeof after.oldestQueuedAgeMs, "number");
      assert.ok(after.oldestQueuedAgeMs! >= 0 && after.oldestQueuedAgeMs! < 10_000);

      const text = await q(["status"]);
      assert.equal(text.code, 0);
      assert.doesNotMatch(text.stdout, ANY_ESCAPE);
      const lines = text.stdout.split("\n");
      assert.equal(lines[0], `Database: ${dbPath}`);
      assert.equal(lines[1], "Tasks: queued 2 · running 0 · completed 1 · failed 1 · cancelled 1");
      assert.match(lines[2], /^Oldest runnable task has waited: \d+ ms$/);
      assert.equal(lines[3], "Last minute: 1 completed (0.0/s), 1 failed");
      assert.match(text.stdout, /\nTYPE +QUEUED +RUNNING +COMPLETED +FAILED +CANCELLED\n/);
      assert.match(text.stdout, /\nboom +0 +0 +0 +1 +0\n/);
      assert.match(text.stdout, /\nnoop +2 +0 +1 +0 +0\n/);
      assert.match(text.stdout, /\nWorkers: 0 live\n$/);
    });
  });

  test("a bad --stale-after or an argument exits 2", async () => {
    await withFixture(async ({ q }) => {
      const r = await q(["status", "--stale-after", "3x"]);
      assert.equal(r.code, 2);
      assertOneLine(r.stderr, /Invalid duration '3x' for --stale-after/);
      const extra = await q(["status", "now"]);
      assert.equal(extra.code, 2);
      assertOneLine(extra.stderr, /Unexpected argument 'now'/);
    });
  });
});

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
      assert.match(lines[0], /^ID +TYPE +STATUS +ATTEMPTS +PRIORITY +CREATED +LAST ERROR$/);
      assert.equal(lines.length, 3);
      assert.match(lines[1], /^ *5 +chatty +queued +0\/5 +100 +\d{4}-/);
      assert.equal((await q(["list", "--status", "failed"])).stdout, "No tasks match.\n");
    });
  });

  test("list: a bad --status, --limit or --offset exits 2", async () => {
    await withFixture(async ({ q }) => {
      const cases: [string[], RegExp][] = [
        [["--status", "done"], /Unknown status 'done'\. Use queued, running, completed, failed or cancelled/],
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
      assert.equal(shown.logs.length, 1);
      assert.equal(shown.logs[0].level, "info");
      assert.equal(shown.logs[0].message, "said hi");
      assert.deepEqual(shown.logs[0].details, { length: 2 });
      assert.equal(shown.logs[0].taskId, task.id);
      assert.deepEqual(Object.keys(shown).sort(), [...TASK_FIELDS, "logs"].sort());

      const text = await q(["show", String(task.id)]);
      assert.equal(text.code, 0);
      assert.match(text.stdout, /^id +1\n/);
      assert.match(text.stdout, /\nstatus +completed\n/);
      assert.match(text.stdout, /\nidempotency key +greeting\n/);
      assert.match(text.stdout, /\nattempts +1 of 5\n/);
      assert.match(text.stdout, /\npayload +\{\n +"word": "hi"\n +\}\n/);
      assert.match(text.stdout, /\nLog\n {2}\d{4}-[\d-]+T[\d:.]+Z info {2}said hi \{"length":2\}\n$/);

      const fresh = await qJson<Task>(["enqueue", "noop"]);
      assert.match((await q(["show", String(fresh.id)])).stdout, /\nLog\n {2}\(empty\)\n$/);
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
          `^prismq cancel: Cannot cancel task ${done.id}: it is 'completed', and only 'queued' or 'running' tasks can be cancelled\\.\\n$`,
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
      await waitFor(() => Date.now() > finished, 1000, "the clock to pass the last finish");

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

describe("prismq workers, migrate and demo", () => {
  test("workers --json: heartbeatAgeMs and stale; an old heartbeat is stale", async () => {
    await withFixture(async ({ q, qJson, inspect }) => {
      const now = Date.now();
      await inspect((_, db) =>
        db.transaction(async (tx) => {
          const insert = "INSERT INTO workers (id, host, pid, started_at, heartbeat_at, concurrency, " +
            "handler_types) VALUES (?, ?, ?, ?, ?, ?, ?)";
          await tx.execute(insert, ["w-fresh", "h1", 11, now - 60_000, now, 4, '["noop"]']);
          await tx.execute(insert, ["w-old", "h2", 22, now - 3_600_000, now - 600_000, 2, "[]"]);
        })
      );
      type View = { id: string; heartbeatAgeMs: number; stale: boolean; host: string; pid: number };
      const workers = await qJson<View[]>(["workers"]);
      assert.deepEqual(workers.map((w) => [w.id, w.stale]), [["w-fresh", false], ["w-old", true]]);
      assert.ok(workers[0].heartbeatAgeMs >= 0 && workers[0].heartbeatAgeMs < 10_000);
      assert.ok(workers[1].heartbeatAgeMs >= 600_000 && workers[1].heartbeatAgeMs < 610_000);
      assert.deepEqual(
        Object.keys(workers[0]).sort(),
        [
          "concurrency",
          "handlerTypes",
          "heartbeatAgeMs",
          "heartbeatAt",
          "host",
          "id",
          "pid",
          "stale",
          "startedAt",
        ],
      );
      assert.deepEqual(
        (await qJson<View[]>(["workers", "--stale-after", "1h"])).map((w) => w.stale),
        [false, false],
      );

      const text = await q(["workers"]);
      assert.equal(text.code, 0);
      const lines = text.stdout.trimEnd().split("\n");
      assert.match(lines[0], /^ID +HOST +PID +STARTED +HEARTBEAT +STATE +CONCURRENCY +TYPES$/);
      assert.match(lines[1], /^w-fresh +h1 +11 .* ago +live +4 +noop$/);
      assert.match(lines[2], /^w-old +h2 +22 .* 10 min 0 s ago +stale +2 +-$/);

      const status = await qJson<{ workers: View[] }>(["status"]);
      assert.deepEqual(status.workers.map((w) => [w.id, w.stale]), [["w-fresh", false], ["w-old", true]]);
      const statusText = await q(["status"]);
      assert.match(
        statusText.stdout,
        /\nWorkers: 1 live, 1 stale\n {2}w-fresh \(host h1, pid 11, concurrency 4, heartbeat /,
      );
      assert.doesNotMatch(statusText.stdout, /w-old/);

      assert.deepEqual(await qJson(["workers", "--prune", "--stale-after", "1h"]), { pruned: [] });
      assert.equal((await q(["workers", "--prune"])).stdout, "Removed 1 stale worker.\n");
      assert.deepEqual((await qJson<View[]>(["workers"])).map((w) => w.id), ["w-fresh"]);
    });
  });

  test("workers with none registered", async () => {
    await withFixture(async ({ q, qJson }) => {
      assert.deepEqual(await qJson(["workers"]), []);
      assert.equal(
        (await q(["workers"])).stdout,
        "No workers are registered. Start one with 'prismq run'.\n",
      );
      const bad = await q(["workers", "--stale-after", "soon"]);
      assert.equal(bad.code, 2);
      assertOneLine(bad.stderr, /--stale-after/);
    });
  });

  test("migrate creates the database; --json {database, schemaVersion}", async () => {
    await withFixture(async ({ q, qJson, dbPath }) => {
      assert.equal(existsSync(dbPath), false);
      assert.deepEqual(await qJson(["migrate"]), { database: dbPath, schemaVersion: LATEST_SCHEMA });
      assert.equal(existsSync(dbPath), true);
      const text = await q(["migrate"]);
      assert.equal(text.code, 0);
      assert.equal(text.stdout, `Database ${dbPath} is at schema version ${LATEST_SCHEMA}.\n`);
      const memory = await cli(["migrate", "--db", ":memory:", "--json"]);
      assert.deepEqual(JSON.parse(memory.stdout), { database: ":memory:", schemaVersion: LATEST_SCHEMA });
    });
  });

  test("demo prints its five sections, exits 0, and leaves other tasks alone", async () => {
    await withFixture(async ({ q, qJson }) => {
      const mine = await qJson<Task>(["enqueue", "noop"]);
      const r = await q(["demo"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      assert.match(r.stdout, /^PrismQ demo on database '.*queue\.db'\n/);
      const headings = r.stdout.split("\n").filter((line) => line.startsWith("== "));
      assert.deepEqual(headings, [
        "== 1. Basic registration",
        "== 2. Worker integration",
        "== 3. Global registry",
        "== 4. Handler override",
        "== 5. Error for an unregistered type",
        "== Demo task counts in this database",
      ]);
      assert.match(r.stdout, /worker demo-worker-1 completed 2 task\(s\)/);
      assert.match(
        r.stdout,
        /of type 'demo_unregistered' through a queue without a registry\n +task \d+ is 'failed' after 1 attempt/,
      );
      const after = await qJson<Task>(["show", String(mine.id)]);
      assert.equal(after.status, "queued");
      assert.equal(after.attempts, 0);
    });
  });
});

describe("prismq: databases, environment and output", () => {
  test("a database in a missing folder: exit 1, one line, no stack trace, nothing created", async () => {
    await withFixture(async ({ dir }) => {
      const missing = join(dir, "no", "such", "folder");
      for (
        const argv of [
          ["status"],
          ["enqueue", "noop"],
          ["run", "--until-empty"],
          ["list"],
          ["migrate"],
          ["status", "--db", `file:${missing}/q.db`],
        ]
      ) {
        const withDb = argv.includes("--db") ? argv : [...argv, "--db", join(missing, "q.db")];
        const r = await cli(withDb);
        assert.equal(r.code, 1, argv.join(" "));
        assert.equal(r.stdout, "");
        assertOneLine(
          r.stderr,
          new RegExp(
            `^prismq ${argv[0]}: Cannot open database '.*q\\.db': the folder '${missing}' does not exist`,
          ),
        );
      }
      assert.equal(existsSync(join(dir, "no")), false);
    });
  });

  test("PRISMQ_DEBUG=1 adds the stack trace", async () => {
    await withFixture(async ({ dir }) => {
      const argv = ["status", "--db", join(dir, "missing", "q.db")];
      const plain = await cli(argv);
      const debug = await cli(argv, { env: { PRISMQ_DEBUG: "1" } });
      assert.equal(debug.code, 1);
      assert.ok(debug.stderr.startsWith(plain.stderr), "the same first line");
      const stack = debug.stderr.slice(plain.stderr.length);
      assert.match(stack, /^DatabaseError: Cannot open database/);
      assert.match(stack, /\n +at .+:\d+:\d+/);
      const usage = await cli(["list", "--status", "done"], { env: { PRISMQ_DEBUG: "1" } });
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /^prismq list: Unknown status 'done'.*\nUsageError: .*\n +at /);
    });
  });

  test("PRISMQ_DB_URL is used when --db is absent, and --db wins over it", async () => {
    await withFixture(async ({ dir, dbPath, inspect }) => {
      const env = { PRISMQ_DB_URL: dbPath };
      const r = await cli(["enqueue", "noop", '{"sleepMs": 1}'], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(existsSync(dbPath), true);
      assert.equal((await inspect((queue) => queue.list())).length, 1);
      assert.deepEqual(JSON.parse((await cli(["migrate", "--json"], { env })).stdout), {
        database: dbPath,
        schemaVersion: LATEST_SCHEMA,
      });
      assert.match((await cli(["status"], { env })).stdout, new RegExp(`^Database: ${dbPath}\n`));

      const other = join(dir, "other.db");
      const explicit = await cli(["enqueue", "noop", "--db", other], { env });
      assert.equal(explicit.code, 0);
      assert.equal(existsSync(other), true);
      assert.equal((await inspect((queue) => queue.list())).length, 1, "nothing more in PRISMQ_DB_URL's");
    });
  });

  test("non-TTY output and NO_COLOR output carry no colours; a TTY without NO_COLOR does", async () => {
    await withFixture(async ({ q, qJson }) => {
      const opts = { handlers: TEST_HANDLERS };
      await q(["enqueue", "noop"], opts);
      await q(["enqueue", "boom", "--max-attempts", "1"], opts);
      await q(["run", "--until-empty"], opts);
      await q(["enqueue", "noop"], opts);
      const failed = (await qJson<Task[]>(["list", "--status", "failed"]))[0];
      const commands = [
        ["status"],
        ["list"],
        ["show", String(failed.id)],
        ["handlers"],
        ["enqueue", "noop"],
        ["workers"],
      ];
      // On a terminal without NO_COLOR the same commands are coloured: the checks below are not vacuous.
      const coloured = await q(["list"], { tty: true, ...opts });
      assert.match(coloured.stdout, SGR);
      for (const argv of commands) {
        const plain = await q(argv, opts);
        assert.equal(plain.code, 0, argv.join(" "));
        assert.doesNotMatch(plain.stdout + plain.stderr, ANY_ESCAPE, `non-TTY ${argv.join(" ")}`);
        for (const value of ["1", "true"]) {
          const noColor = await q(argv, { tty: true, env: { NO_COLOR: value }, ...opts });
          assert.equal(noColor.code, 0);
          assert.doesNotMatch(noColor.stdout + noColor.stderr, SGR, `NO_COLOR ${argv.join(" ")}`);
        }
      }
      const run = await q(["run", "--until-empty"], opts);
      assert.doesNotMatch(run.stdout + run.stderr, ANY_ESCAPE, "non-TTY run");
      await q(["enqueue", "boom", "--max-attempts", "1"], opts);
      const runNoColor = await q(["run", "--until-empty"], { tty: true, env: { NO_COLOR: "1" }, ...opts });
      assert.match(runNoColor.stdout, /failed task \d+ \(boom\)/);
      assert.doesNotMatch(runNoColor.stdout + runNoColor.stderr, SGR, "NO_COLOR run");
      const bulk = await q(["enqueue", "--ndjson", "-"], {
        stdin: '{"type": "noop"}\nnot json\n',
        env: { NO_COLOR: "1" },
      });
      assert.equal(bulk.code, 2);
      assert.doesNotMatch(bulk.stdout + bulk.stderr, ANY_ESCAPE, "non-TTY bulk enqueue");
    });
  });
});
