/**
 * Bad input is refused whole: a table of bad inputs, each with the error it must give and its exit code,
 * and the database exactly as it was afterwards. Also the inputs that look dangerous but are plain data
 * (SQL in keys and payloads), which must be stored literally and change nothing else.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { DatabaseError, Queue, QueueDatabase } from "../mod.ts";
import { cli, type CliOptions } from "./_cli.ts";
import { assertOneLine, closedPort, makeTempDir, rejectionOf, silentServer, within } from "./_helpers.ts";

/** Every row of every PrismQ table, as text: equal snapshots mean an unchanged database. */
async function snapshot(path: string): Promise<string> {
  const db = new QueueDatabase(path);
  try {
    return await db.transaction(async (tx) => {
      const tables = ["task_queue", "task_logs", "workers", "prismq_migrations"];
      const dumps = await Promise.all(tables.map((t) => tx.execute(`SELECT * FROM ${t} ORDER BY 1`)));
      return JSON.stringify(dumps.map((d) => d.rows));
    });
  } finally {
    await db.close();
  }
}

const INVALID_UTF8 = new Uint8Array([0x7b, 0x22, 0x73, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]); // {"s":"\xc3("}
const big = "x".repeat(1024 * 1024);

interface BadInput {
  what: string;
  argv: string[];
  options?: CliOptions;
  code: 1 | 2;
  error: RegExp;
}

const TABLE: BadInput[] = [
  { what: "malformed JSON", argv: ["enqueue", "noop", "{bad"], code: 2, error: /payload is not valid JSON/ },
  {
    what: "a JSON payload that is not an object",
    argv: ["enqueue", "noop", "[1]"],
    code: 2,
    error: /must be a JSON object/,
  },
  {
    what: "a schema-invalid field",
    argv: ["enqueue", "noop", '{"sleepMs": "soon"}'],
    code: 2,
    error: /sleepMs: /,
  },
  {
    what: "an unknown payload field",
    argv: ["enqueue", "noop", '{"sleep": 1}'],
    code: 2,
    error: /sleep: is not a field/,
  },
  {
    what: "an invalid email address",
    argv: ["enqueue", "send_email", '{"to": "not-an-address", "subject": "s", "body": "b"}'],
    code: 2,
    error: /to/,
  },
  {
    what: "an unknown type",
    argv: ["enqueue", "nope", "{}"],
    code: 2,
    error: /No handler registered for task type 'nope'/,
  },
  {
    what: "SQL in the type",
    argv: ["enqueue", "noop'; DROP TABLE task_queue; --", "{}"],
    code: 2,
    error: /No handler registered for task type 'noop'; DROP TABLE task_queue; --'/,
  },
  {
    what: "a payload over 1 MiB",
    argv: ["enqueue", "send_email", JSON.stringify({ to: "a@example.com", subject: "s", body: big })],
    code: 2,
    error: /over the limit of 1048576 bytes/,
  },
  {
    what: "a payload over PRISMQ_MAX_PAYLOAD_BYTES",
    argv: ["enqueue", "noop", '{"sleepMs": 1}'],
    options: { env: { PRISMQ_MAX_PAYLOAD_BYTES: "8" } },
    code: 2,
    error: /over the limit of 8 bytes/,
  },
  {
    what: "invalid UTF-8 on standard input",
    argv: ["enqueue", "noop", "-"],
    options: { stdin: INVALID_UTF8 },
    code: 2,
    error: /not valid UTF-8/,
  },
  {
    what: "invalid UTF-8 in a payload file",
    argv: ["enqueue", "noop", "--payload-file", "payload.json"],
    options: { files: { "payload.json": INVALID_UTF8 } },
    code: 2,
    error: /not valid UTF-8/,
  },
  {
    what: "a duration without a unit",
    argv: ["enqueue", "noop", "--delay", "10"],
    code: 2,
    error: /Invalid duration '10'/,
  },
  {
    what: "an unknown duration unit",
    argv: ["enqueue", "noop", "--delay", "5x"],
    code: 2,
    error: /Invalid duration/,
  },
  {
    what: "a negative duration",
    argv: ["enqueue", "noop", "--delay=-5s"],
    code: 2,
    error: /Invalid duration/,
  },
  {
    what: "a delay past the latest time a Date holds",
    argv: ["enqueue", "noop", "--delay", "99999999d"],
    code: 2,
    error: /duration '99999999d' for --delay is too long/,
  },
  {
    what: "a timeout over 100 years",
    argv: ["enqueue", "noop", "--timeout", "36501d"],
    code: 2,
    error: /--timeout is too long/,
  },
  {
    what: "an NDJSON delay of 1e300 ms",
    argv: ["enqueue", "--ndjson", "lines.ndjson"],
    options: { files: { "lines.ndjson": '{"type": "noop", "delayMs": 1e300}\n' } },
    code: 2,
    error: /line 1: delayMs 1e\+300 puts the task past the latest time/,
  },
  {
    what: "an NDJSON runAt of -1e300",
    argv: ["enqueue", "--ndjson", "lines.ndjson"],
    options: { files: { "lines.ndjson": '{"type": "noop", "runAt": -1e300}\n' } },
    code: 2,
    error: /line 1: runAt must be a time within the range of a Date/,
  },
  {
    what: "an NDJSON idempotency key with a lone surrogate",
    argv: ["enqueue", "--ndjson", "lines.ndjson"],
    options: { files: { "lines.ndjson": '{"type": "noop", "idempotencyKey": "a\\ud800"}\n' } },
    code: 2,
    error: /line 1: idempotencyKey is not well-formed Unicode/,
  },
  {
    what: "an NDJSON payload with a lone surrogate",
    argv: ["enqueue", "--ndjson", "lines.ndjson"],
    options: {
      files: {
        "lines.ndjson":
          '{"type": "send_email", "payload": {"to": "a@example.com", "subject": "\\udc00", "body": "b"}}\n',
      },
    },
    code: 2,
    error: /line 1: The payload for task type 'send_email' is not well-formed Unicode/,
  },
  {
    what: "an NDJSON type with a lone surrogate",
    argv: ["enqueue", "--ndjson", "lines.ndjson"],
    options: { files: { "lines.ndjson": '{"type": "noop\\ud83d"}\n' } },
    code: 2,
    error: /line 1: The task type "noop\\ud83d" is not well-formed Unicode/,
  },
  {
    what: "an integer in a payload that JavaScript would round",
    argv: [
      "enqueue",
      "http_request",
      '{"url": "https://hooks.example.com/", "body": {"n": 12345678901234567890}}',
    ],
    code: 2,
    error:
      /the number 12345678901234567890 is beyond .* would become 12345678901234567000; write it as a string/,
  },
  {
    what: "an NDJSON line with an integer JavaScript would round",
    argv: ["enqueue", "--ndjson", "lines.ndjson"],
    options: { files: { "lines.ndjson": '{"type": "noop", "payload": {"sleepMs": 90071992547409910}}\n' } },
    code: 2,
    error: /line 1: the number 90071992547409910 is beyond/,
  },
  { what: "a lease under a second", argv: ["run", "--lease", "10ms"], code: 2, error: /--lease/ },
  { what: "a grace period in words", argv: ["run", "--grace", "soon"], code: 2, error: /--grace/ },
  {
    what: "an impossible date",
    argv: ["enqueue", "noop", "--run-at", "2030-02-30T09:00:00Z"],
    code: 2,
    error: /Invalid time/,
  },
  {
    what: "a time without a zone",
    argv: ["enqueue", "noop", "--run-at", "2030-01-31T09:00:00"],
    code: 2,
    error: /zone/,
  },
  {
    what: "a date in words",
    argv: ["enqueue", "noop", "--run-at", "tomorrow"],
    code: 2,
    error: /Invalid time/,
  },
  {
    what: "a fractional priority",
    argv: ["enqueue", "noop", "--priority", "1.5"],
    code: 2,
    error: /--priority/,
  },
  {
    what: "a priority in words",
    argv: ["enqueue", "noop", "--priority", "high"],
    code: 2,
    error: /--priority/,
  },
  {
    what: "zero max attempts",
    argv: ["enqueue", "noop", "--max-attempts", "0"],
    code: 2,
    error: /--max-attempts/,
  },
  {
    what: "an exponent for a count",
    argv: ["enqueue", "noop", "--max-attempts", "1e3"],
    code: 2,
    error: /--max-attempts/,
  },
  { what: "zero concurrency", argv: ["run", "--concurrency", "0"], code: 2, error: /--concurrency/ },
  { what: "a negative limit", argv: ["list", "--limit", "-1"], code: 2, error: /--limit/ },
  { what: "a task id in words", argv: ["show", "abc"], code: 2, error: /task id/ },
  { what: "task id zero", argv: ["cancel", "0"], code: 2, error: /task id/ },
  { what: "a task that does not exist", argv: ["retry", "999"], code: 2, error: /No task with id 999/ },
  {
    what: "purging running tasks",
    argv: ["purge", "--status", "running", "--older-than", "1d"],
    code: 2,
    error: /Cannot purge 'running'/,
  },
  { what: "purge without an age", argv: ["purge", "--status", "completed"], code: 2, error: /--older-than/ },
  { what: "an unknown status", argv: ["list", "--status", "done"], code: 2, error: /Unknown status 'done'/ },
  {
    what: "cancelling a finished task",
    argv: ["cancel", "1"],
    code: 1,
    error: /Cannot cancel task 1: it is 'completed'/,
  },
];

describe("bad input is refused with its error and exit code, and the database is unchanged", () => {
  for (const bad of TABLE) {
    test(`${bad.what}: exit ${bad.code}`, async () => {
      const { dir, remove } = makeTempDir();
      const dbPath = join(dir, "queue.db");
      try {
        // A database with history: one completed task (id 1) and one queued.
        assert.equal((await cli(["enqueue", "noop", "--db", dbPath])).code, 0);
        assert.equal((await cli(["run", "--until-empty", "--db", dbPath])).code, 0);
        assert.equal((await cli(["enqueue", "noop", '{"sleepMs": 5}', "--db", dbPath])).code, 0);
        const before = await snapshot(dbPath);
        const files = Object.fromEntries(
          Object.entries(bad.options?.files ?? {}).map(([name, content]) => [join(dir, name), content]),
        );
        const argv = bad.argv.map((word) => (word in (bad.options?.files ?? {}) ? join(dir, word) : word));
        const result = await cli([...argv, "--db", dbPath], { ...bad.options, files });
        assert.equal(result.code, bad.code, result.stderr);
        assert.match(result.stderr, bad.error);
        assertOneLine(result.stderr);
        assert.equal(await snapshot(dbPath), before, "the database is unchanged");
      } finally {
        remove();
      }
    });
  }
});

describe("dangerous-looking input that is valid is stored as plain data", () => {
  test("SQL in an idempotency key and in a payload is stored literally and nothing else changes", async () => {
    const { dir, remove } = makeTempDir();
    const dbPath = join(dir, "queue.db");
    try {
      const key = "k'); DELETE FROM task_queue; --";
      const subject = "'; DROP TABLE task_queue; SELECT '";
      const first = await cli(["enqueue", "noop", "--key", key, "--db", dbPath, "--json"]);
      const second = await cli([
        "enqueue",
        "send_email",
        JSON.stringify({ to: "a@example.com", subject, body: "1 OR 1=1" }),
        "--db",
        dbPath,
        "--json",
      ]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(second.code, 0, second.stderr);
      const db = new QueueDatabase(dbPath);
      const tasks = await new Queue(db).list();
      await db.close();
      assert.equal(tasks.length, 2);
      assert.equal(tasks.find((t) => t.type === "noop")?.idempotencyKey, key);
      assert.deepEqual(tasks.find((t) => t.type === "send_email")?.payload, {
        to: "a@example.com",
        subject,
        body: "1 OR 1=1",
      });
    } finally {
      remove();
    }
  });

  test("NDJSON with bad lines among a thousand good ones writes exactly the good ones", async () => {
    const { dir, remove } = makeTempDir();
    const dbPath = join(dir, "queue.db");
    try {
      const lines = Array.from(
        { length: 1000 },
        (_, i) => JSON.stringify({ type: "noop", payload: { sleepMs: i % 7 } }),
      );
      const bad = new Map([
        [17, "{oops"],
        [250, JSON.stringify({ type: "noop", payload: { sleepMs: -1 } })],
        [499, JSON.stringify({ type: "drop table", payload: {} })],
        [730, JSON.stringify({ type: "noop", priority: "high" })],
        [998, JSON.stringify({ type: "noop", extra: true })],
      ]);
      // In ascending order, so that each bad line lands on its final line number.
      for (const [n, line] of bad) lines.splice(n - 1, 0, line);
      const file = join(dir, "tasks.ndjson");
      const result = await cli(["enqueue", "--ndjson", file, "--db", dbPath, "--json"], {
        files: { [file]: lines.join("\n") + "\n" },
      });
      assert.equal(result.code, 2);
      const summary = JSON.parse(result.stdout);
      assert.equal(summary.enqueued, 1000);
      assert.deepEqual(summary.invalid.map((entry: { line: number }) => entry.line), [...bad.keys()]);
      const db = new QueueDatabase(dbPath);
      const stats = await new Queue(db).stats();
      await db.close();
      assert.equal(stats.counts.queued, 1000);
      assert.deepEqual(Object.keys(stats.byType), ["noop"]);
    } finally {
      remove();
    }
  });
});

describe("unusable databases give one clear line, a non-zero exit, and are left as they were", () => {
  test("a corrupt file", async () => {
    const { dir, remove } = makeTempDir();
    try {
      const path = join(dir, "corrupt.db");
      const garbage = new Uint8Array(16_384).map((_, i) => (i * 7919) % 251);
      writeFileSync(path, garbage);
      for (const argv of [["list"], ["enqueue", "noop"], ["run", "--until-empty"]]) {
        const result = await cli([...argv, "--db", path]);
        assert.equal(result.code, 1);
        assert.match(result.stderr, /is not a valid SQLite database or is corrupt/);
        assertOneLine(result.stderr);
      }
      assert.deepEqual(new Uint8Array(readFileSync(path)), garbage);
      assert.equal(existsSync(`${path}-wal`), false);
    } finally {
      remove();
    }
  });

  test("a libSQL server nobody answers at: exit 1, one line naming the URL; the library says the same", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    for (const argv of [["list"], ["enqueue", "noop"], ["status"]]) {
      const result = await cli([...argv, "--db", url]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, new RegExp(`Cannot reach the libSQL server at '${url}'`));
      assertOneLine(result.stderr);
    }
    const db = new QueueDatabase(url);
    try {
      await assert.rejects(() => db.initializeSchema(), (error: Error) => {
        assert.equal(error.name, "DatabaseError");
        assert.match(error.message, /Cannot reach the libSQL server at .*Check the URL/);
        return true;
      });
    } finally {
      await db.close();
    }
  });

  test("a server that accepts connections and never answers: every command fails within its deadline, naming the URL", async () => {
    const server = await silentServer();
    try {
      for (const scheme of ["http", "ws"]) {
        const url = `${scheme}://127.0.0.1:${server.port}`;
        for (const argv of [["status"], ["enqueue", "noop"], ["run", "--until-empty"], ["list"]]) {
          const result = await within(
            15_000,
            `prismq ${argv.join(" ")} --db ${url}`,
            cli([...argv, "--db", url], { env: { PRISMQ_DB_TIMEOUT_MS: "300" } }),
          );
          assert.equal(result.code, 1, result.stderr);
          assert.match(result.stderr, new RegExp(`The libSQL server at '${url}' did not answer`), argv[0]);
          assertOneLine(result.stderr);
        }
      }
      const db = new QueueDatabase(`ws://127.0.0.1:${server.port}`, { requestTimeoutMs: 300 });
      try {
        const error = await within(15_000, "initializeSchema", rejectionOf(db.initializeSchema()));
        assert.ok(error instanceof DatabaseError, String(error));
        assert.match(error.message, /did not answer within 300 ms\. Check that it is running/);
      } finally {
        await db.close();
      }
    } finally {
      await server.close();
    }
  });

  test("PRISMQ_DB_TIMEOUT_MS that is not a whole number of milliseconds is a usage error", async () => {
    for (const value of ["0", "-5", "1.5", "soon", String(2 ** 31)]) {
      const result = await cli(["status", "--db", ":memory:"], { env: { PRISMQ_DB_TIMEOUT_MS: value } });
      assert.equal(result.code, 2, value);
      assert.match(result.stderr, /PRISMQ_DB_TIMEOUT_MS/);
    }
  });

  test("PRISMQ_DB_RECONNECT_TIMEOUT_MS that is not a whole number of milliseconds to an hour is a usage error", async () => {
    for (const value of ["-1", "1.5", "soon", "3600001"]) {
      const result = await cli(["status", "--db", ":memory:"], {
        env: { PRISMQ_DB_RECONNECT_TIMEOUT_MS: value },
      });
      assert.equal(result.code, 2, value);
      assert.match(result.stderr, /PRISMQ_DB_RECONNECT_TIMEOUT_MS/);
    }
  });

  test("--ndjson given a folder: exit 2, one line, nothing written", async () => {
    const { dir, remove } = makeTempDir();
    try {
      const dbPath = join(dir, "queue.db");
      mkdirSync(join(dir, "tasks"));
      const result = await cli(["enqueue", "--ndjson", join(dir, "tasks"), "--db", dbPath]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /'.*tasks' is a folder, not an NDJSON file/);
      assertOneLine(result.stderr);
    } finally {
      remove();
    }
  });

  test("a disk that fills up during a bulk enqueue: exit 1, saying which lines were written and where to resume", async () => {
    const { dir, remove } = makeTempDir();
    try {
      const dbPath = join(dir, "queue.db");
      const ndjson = join(dir, "tasks.ndjson");
      const line = JSON.stringify({ type: "noop", payload: {}, idempotencyKey: "k".repeat(200) });
      writeFileSync(
        ndjson,
        Array.from({ length: 60_000 }, (_, i) => line.replace('"k', `"${i}-k`)).join("\n"),
      );
      // The CLI may write files of at most 6 MiB: the log fills after a few batches of 10,000 lines.
      const prismq = new URL("../scripts/prismq.ts", import.meta.url).pathname;
      const script = `trap '' XFSZ; ulimit -f 6144; exec '${process.execPath}' run -A "$@"`;
      const run = spawnSync("bash", [
        "-c",
        script,
        "bash",
        prismq,
        "enqueue",
        "--ndjson",
        ndjson,
        "--db",
        dbPath,
      ], {
        encoding: "utf8",
      });
      assert.equal(run.status, 1, `expected the disk to fill: ${run.stdout}${run.stderr}`);
      const match =
        /Lines 1 to ([\d,]+) were written before it \(([\d,]+) tasks\); nothing from line ([\d,]+) on was\. Resume from line \3\./
          .exec(run.stderr);
      assert.ok(match, run.stderr);
      assertOneLine(run.stderr);
      const [written, tasks, resume] = match.slice(1, 4).map((n) => Number(n.replaceAll(",", "")));
      assert.equal(resume, written + 1);
      assert.equal(written % 10_000, 0, "whole batches were written");
      const db = new QueueDatabase(dbPath);
      try {
        assert.equal((await new Queue(db).stats()).counts.queued, tasks);
        assert.equal(tasks, written);
      } finally {
        await db.close();
      }
    } finally {
      remove();
    }
  });

  test("a folder that does not exist is not created", async () => {
    const { dir, remove } = makeTempDir();
    try {
      const result = await cli(["enqueue", "noop", "--db", join(dir, "missing", "queue.db")]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /the folder '.*missing' does not exist/);
      assertOneLine(result.stderr);
      assert.equal(existsSync(join(dir, "missing")), false);
    } finally {
      remove();
    }
  });

  test("a path that is a folder", async () => {
    const { dir, remove } = makeTempDir();
    try {
      mkdirSync(join(dir, "queue.db"));
      const result = await cli(["list", "--db", join(dir, "queue.db")]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /cannot be created or opened/);
      assertOneLine(result.stderr);
    } finally {
      remove();
    }
  });

  test("a read-only file: reading works, writing fails clearly and changes nothing", async (t) => {
    const { dir, remove } = makeTempDir();
    const path = join(dir, "queue.db");
    const locked = process.getuid?.() === 0 ? immutable(path) : readOnly(path);
    try {
      assert.equal((await cli(["enqueue", "noop", "--db", path])).code, 0);
      const before = await snapshot(path);
      if (!locked.lock()) {
        t.skip("cannot make a file read-only for root here (no chattr)");
        return;
      }
      const read = await cli(["list", "--json", "--db", path]);
      assert.equal(read.code, 0, read.stderr);
      assert.equal(JSON.parse(read.stdout).length, 1);
      const write = await cli(["enqueue", "noop", "--db", path]);
      assert.equal(write.code, 1);
      assert.match(write.stderr, /is read-only/);
      assertOneLine(write.stderr);
      locked.unlock();
      assert.equal(await snapshot(path), before);
    } finally {
      locked.unlock();
      remove();
    }
  });
});

/** Root ignores file modes; the immutable attribute stops even root from writing. */
function immutable(path: string) {
  let set = false;
  return {
    lock() {
      try {
        execFileSync("chattr", ["+i", path], { stdio: "ignore" });
        set = true;
      } catch {
        set = false;
      }
      return set;
    },
    unlock() {
      if (set) execFileSync("chattr", ["-i", path], { stdio: "ignore" });
      set = false;
    },
  };
}

function readOnly(path: string) {
  return {
    lock: () => (chmodSync(path, 0o444), true),
    unlock: () => existsSync(path) && chmodSync(path, 0o644),
  };
}
