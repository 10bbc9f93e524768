/**
 * `prismq` end to end: compiled once with `bun build --compile` (scripts/build.ts), then run as a process
 * from new empty folders (no node_modules anywhere near it), through pipes, with real signals.
 *
 * @module
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Queue, QueueDatabase, type Task } from "../mod.ts";
import { handlers } from "../handlers/mod.ts";
import { VERSION } from "../src/version.ts";
import {
  ANY_ESCAPE,
  assertOneLine,
  closedPort,
  heldRequests,
  jsonLines,
  LATEST_SCHEMA,
  makeTempDir,
  silentServer,
  waitFor,
  within,
} from "./_helpers.ts";
import { baseEnv, buildBinary, type Exit, type SpawnOptions, start } from "./_binary.ts";
import { POSTGRES_DATABASE } from "./_databases.ts";
import { passwordRoleDatabase, ROLE_PASSWORD } from "./_postgres.ts";

describe("the compiled prismq binary, from an empty folder", () => {
  let binDir: { bin: string; dir: string; remove: () => void };
  let bin = "";
  const folders: { dir: string; remove: () => void }[] = [];

  /** A new empty folder to run the binary in; removed at the end. */
  function emptyFolder(): string {
    const folder = makeTempDir("prismq-bin-cwd-");
    folders.push(folder);
    return folder.dir;
  }

  /** Runs the binary in `cwd` to its end; with `time`, under GNU time, which adds its peak memory to stderr. */
  function prismq(
    cwd: string,
    args: string[],
    options: Omit<SpawnOptions, "cwd"> & { time?: boolean } = {},
  ): Promise<Exit> {
    if (options.time) return start("/usr/bin/time", ["-f", "%M", bin, ...args], { ...options, cwd }).done;
    return start(bin, args, { ...options, cwd }).done;
  }

  /** Runs the binary with --json and parses its output, failing unless it exits 0. */
  async function prismqJson<T = unknown>(cwd: string, args: string[], stdin?: string): Promise<T> {
    const result = await prismq(cwd, [...args, "--json"], { stdin });
    assert.equal(result.code, 0, `prismq ${args.join(" ")}: ${result.stderr}`);
    return JSON.parse(result.stdout) as T;
  }

  before(async () => {
    binDir = await buildBinary();
    bin = binDir.bin;
  });

  after(() => {
    for (const folder of folders) folder.remove();
    binDir?.remove();
  });

  describe("one queue, command after command", () => {
    let cwd = "";
    let failedId = 0;
    let completedId = 0;

    test("--version runs with no node_modules beside it and creates nothing", async () => {
      cwd = emptyFolder();
      assert.deepEqual(readdirSync(cwd), []);
      assert.deepEqual(readdirSync(binDir.dir), ["prismq"]);
      const r = await prismq(cwd, ["--version"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `prismq ${VERSION}\n`);
      assert.equal(r.stderr, "");
      assert.deepEqual(readdirSync(cwd), [], "--version opens no database");
    });

    test("usage errors: no arguments, an unknown command, an unknown option exit 2", async () => {
      const none = await prismq(cwd, []);
      assert.equal(none.code, 2);
      assert.equal(none.stdout, "");
      assert.match(none.stderr, /Usage: prismq <command>/);
      const unknown = await prismq(cwd, ["frobnicate"]);
      assert.equal(unknown.code, 2);
      assertOneLine(unknown.stderr, /^prismq: Unknown command 'frobnicate'/);
      const option = await prismq(cwd, ["status", "--bogus"]);
      assert.equal(option.code, 2);
      assertOneLine(option.stderr, /^prismq status: .*'--bogus'/);
      const help = await prismq(cwd, ["help", "run"]);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /^Usage: prismq run \[options\]/);
      assert.deepEqual(readdirSync(cwd), []);
    });

    test("handlers --json: an array with type, version and description, including noop", async () => {
      const described = await prismqJson<{ type: string; version: string; description: string }[]>(cwd, [
        "handlers",
      ]);
      assert.ok(Array.isArray(described));
      assert.deepEqual(described.map((h) => h.type), handlers.map((h) => h.type).sort());
      for (const handler of described) {
        assert.equal(typeof handler.type, "string");
        assert.match(handler.version, /^\d+\.\d+\.\d+/);
        assert.equal(typeof handler.description, "string");
      }
      const noop = described.find((h) => h.type === "noop");
      assert.ok(noop, "noop is linked");
      assert.equal(noop.version, "1.0.0");
      assert.match(noop.description, /\S/);
    });

    test("enqueue: a valid task creates ./prismq.db; bad ones exit 2 with one line", async () => {
      const r = await prismq(cwd, ["enqueue", "noop", '{"sleepMs": 1}']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "Enqueued task 1 (noop), runnable now.\n");
      assert.equal(r.stderr, "");
      assert.ok(existsSync(join(cwd, "prismq.db")), "the default database is ./prismq.db");

      const malformed = await prismq(cwd, ["enqueue", "noop", "{sleepMs: 1"]);
      assert.equal(malformed.code, 2);
      assert.equal(malformed.stdout, "");
      assertOneLine(malformed.stderr, /^prismq enqueue: The payload is not valid JSON/);

      const invalid = await prismq(cwd, ["enqueue", "noop", '{"sleepMs": -5}']);
      assert.equal(invalid.code, 2);
      assertOneLine(invalid.stderr, /Invalid payload for task type 'noop': sleepMs: must be at least 0/);

      const unknown = await prismq(cwd, ["enqueue", "send_sms", "{}"]);
      assert.equal(unknown.code, 2);
      assertOneLine(unknown.stderr, /'send_sms'/);
      for (const handler of handlers) assert.match(unknown.stderr, new RegExp(`'${handler.type}'`));

      const delay = await prismq(cwd, ["enqueue", "noop", "--delay", "3x"]);
      assert.equal(delay.code, 2);
      assertOneLine(delay.stderr, /Invalid duration '3x' for --delay/);

      const fromStdin = await prismqJson<Task>(cwd, ["enqueue", "noop", "-"], '{"sleepMs": 2}');
      assert.deepEqual(fromStdin.payload, { sleepMs: 2 });

      const tasks = await prismqJson<Task[]>(cwd, ["list"]);
      assert.equal(tasks.length, 2, "nothing was written for the bad ones");
    });

    test("enqueue --key twice: exit 0, 'already exists', one row", async () => {
      const first = await prismq(cwd, ["enqueue", "noop", "--key", "nightly"]);
      assert.equal(first.code, 0, first.stderr);
      const second = await prismq(cwd, ["enqueue", "noop", "--key", "nightly"]);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /already exists with key 'nightly'.*Nothing was added\./);
      const keyed = (await prismqJson<Task[]>(cwd, ["list"])).filter((t) => t.idempotencyKey === "nightly");
      assert.equal(keyed.length, 1);
    });

    test("enqueue --ndjson - with bad lines among good ones", async () => {
      const lines = [
        '{"type": "noop"}',
        '{"type": "noop", "payload": {"sleepMs": 3}}',
        "{not json",
        '{"type": "noop", "payload": {"sleepMs": "soon"}}',
        '{"type": "send_sms"}',
        '{"type": "noop", "colour": "red"}',
        '{"type": "noop", "priority": "high"}',
        '{"type": "noop", "priority": 5}',
      ];
      const r = await prismq(cwd, ["enqueue", "--ndjson", "-"], { stdin: lines.join("\n") + "\n" });
      assert.equal(r.code, 2);
      assert.equal(r.stdout, "Enqueued 3 tasks from 8 lines; 5 bad lines were skipped.\n");
      const reported = r.stderr.trimEnd().split("\n");
      assert.equal(reported.length, 5, r.stderr);
      assert.match(reported[0], /^line 3: invalid JSON/);
      assert.match(reported[1], /^line 4: .*sleepMs: must be a number/);
      assert.match(reported[2], /^line 5: .*'send_sms'/);
      assert.match(reported[3], /^line 6: unknown field 'colour'$/);
      assert.match(reported[4], /^line 7: priority: /);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      const tasks = await prismqJson<Task[]>(cwd, ["list"]);
      assert.equal(tasks.length, 6);
      assert.ok(tasks.every((t) => t.type === "noop"));
      assert.ok(tasks.some((t) => t.priority === 5));
    });

    test("run --until-empty completes the tasks and exits 0", async () => {
      // A task of a type this build does not link (from an older build, say) fails at once.
      const db = new QueueDatabase(join(cwd, "prismq.db"));
      try {
        failedId = (await new Queue(db).enqueue("retired_type", { n: 1 })).id;
      } finally {
        await db.close();
      }
      const r = await prismq(cwd, ["run", "--until-empty", "--concurrency", "3"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      assert.doesNotMatch(r.stdout, ANY_ESCAPE);
      assert.match(
        r.stdout,
        /^Worker \S+-\d+ started: concurrency 3, strategy priority, queues all, types all\.\n/,
      );
      assert.equal(r.stdout.match(/ completed task \d+ \(noop\) in \d+ ms\n/g)?.length, 6);
      assert.match(
        r.stdout,
        new RegExp(` failed task ${failedId} \\(retired_type\\) after attempt 1: No handler`),
      );
      assert.match(
        r.stdout,
        /stopped: 6 completed, 1 failed, 0 retried, 0 snoozed, 0 cancelled, 0 lost their lease, 0 handed back\.\n$/,
      );
      const tasks = await prismqJson<Task[]>(cwd, ["list"]);
      assert.deepEqual(
        tasks.map((t) => t.status).sort(),
        ["completed", "completed", "completed", "completed", "completed", "completed", "failed"],
      );
      completedId = tasks.find((t) => t.status === "completed")!.id;
    });

    test("status --json has every count, byType, oldestQueuedAgeMs, lastMinute and workers", async () => {
      const status = await prismqJson<Record<string, unknown>>(cwd, ["status"]);
      assert.deepEqual(Object.keys(status).sort(), [
        "byType",
        "counts",
        "lastMinute",
        "oldestQueuedAgeMs",
        "workers",
      ]);
      assert.deepEqual(status.counts, {
        waiting: 0,
        queued: 0,
        running: 0,
        completed: 6,
        failed: 1,
        cancelled: 0,
      });
      assert.deepEqual(status.byType, {
        noop: { waiting: 0, queued: 0, running: 0, completed: 6, failed: 0, cancelled: 0 },
        retired_type: { waiting: 0, queued: 0, running: 0, completed: 0, failed: 1, cancelled: 0 },
      });
      assert.equal(status.oldestQueuedAgeMs, null);
      assert.deepEqual(status.lastMinute, { completed: 6, failed: 1 });
      assert.deepEqual(status.workers, []);
      const text = await prismq(cwd, ["status"]);
      assert.equal(text.code, 0);
      assert.match(
        text.stdout,
        /^Database: \.\/prismq\.db\nTasks: waiting 0 · queued 0 · running 0 · completed 6 · failed 1/,
      );
    });

    test("list --json and show <id> --json", async () => {
      const failed = await prismqJson<Task[]>(cwd, ["list", "--status", "failed"]);
      assert.deepEqual(failed.map((t) => t.id), [failedId]);
      assert.equal((await prismqJson<Task[]>(cwd, ["list", "--limit", "2"])).length, 2);
      const shown = await prismqJson<Task & { logs: unknown[] }>(cwd, ["show", String(failedId)]);
      assert.equal(shown.id, failedId);
      assert.equal(shown.type, "retired_type");
      assert.equal(shown.status, "failed");
      assert.match(shown.errorMessage!, /No handler registered for task type 'retired_type'/);
      assert.deepEqual(shown.payload, { n: 1 });
      assert.deepEqual(shown.logs, []);
      const missing = await prismq(cwd, ["show", "9999"]);
      assert.equal(missing.code, 2);
      assertOneLine(missing.stderr, /^prismq show: No task with id 9999\.$/m);
      const status = await prismq(cwd, ["list", "--status", "done"]);
      assert.equal(status.code, 2);
      assertOneLine(status.stderr, /Unknown status 'done'/);
    });

    test("retry <id>, retry --failed, cancel", async () => {
      const retried = await prismqJson<Task>(cwd, ["retry", String(failedId)]);
      assert.equal(retried.status, "queued");
      assert.equal(retried.attempts, 0);
      assert.deepEqual(await prismqJson(cwd, ["retry", "--failed"]), { requeued: 0 });

      const notFailed = await prismq(cwd, ["retry", String(completedId)]);
      assert.equal(notFailed.code, 1);
      assertOneLine(notFailed.stderr, new RegExp(`Cannot retry task ${completedId}: it is 'completed'`));

      const cancel = await prismq(cwd, ["cancel", String(failedId)]);
      assert.equal(cancel.code, 0, cancel.stderr);
      assert.equal(cancel.stdout, `Task ${failedId} (retired_type) is cancelled.\n`);
      const refused = await prismq(cwd, ["cancel", String(completedId)]);
      assert.equal(refused.code, 1);
      assert.equal(refused.stdout, "");
      assertOneLine(
        refused.stderr,
        new RegExp(`^prismq cancel: Cannot cancel task ${completedId}: it is 'completed'`),
      );
      const counts = (await prismqJson<{ counts: Record<string, number> }>(cwd, ["status"])).counts;
      assert.deepEqual(counts, { waiting: 0, queued: 0, running: 0, completed: 6, failed: 0, cancelled: 1 });
    });

    test("purge", async () => {
      const missing = await prismq(cwd, ["purge", "--status", "completed"]);
      assert.equal(missing.code, 2);
      assertOneLine(missing.stderr, /Missing --older-than/);
      const queued = await prismq(cwd, ["purge", "--status", "queued", "--older-than", "0s"]);
      assert.equal(queued.code, 2);
      assertOneLine(queued.stderr, /Cannot purge 'queued' tasks/);
      assert.deepEqual(await prismqJson(cwd, ["purge", "--status", "completed", "--older-than", "1h"]), {
        deleted: 0,
      });
      assert.deepEqual(
        await prismqJson(cwd, ["purge", "--status", "completed,cancelled", "--older-than", "0s"]),
        { deleted: 6 },
      );
      // The newest task stays, so that its id is never given to a new task.
      const left = await prismqJson<Task[]>(cwd, ["list"]);
      assert.equal(left.length, 1);
      assert.equal(left[0].id, Math.max(failedId, completedId, left[0].id));
    });

    test("workers --json", async () => {
      assert.deepEqual(await prismqJson(cwd, ["workers"]), []);
      const db = new QueueDatabase(join(cwd, "prismq.db"));
      try {
        await db.transaction(async (tx) => {
          await tx.execute(
            "INSERT INTO workers (id, host, pid, started_at, heartbeat_at, concurrency, handler_types) " +
              "VALUES (?, ?, ?, ?, ?, ?, ?)",
            ["gone", "elsewhere", 1, Date.now() - 7_200_000, Date.now() - 3_600_000, 4, '["noop"]'],
          );
        });
      } finally {
        await db.close();
      }
      const workers = await prismqJson<{ id: string; heartbeatAgeMs: number; stale: boolean }[]>(cwd, [
        "workers",
      ]);
      assert.equal(workers.length, 1);
      assert.equal(workers[0].id, "gone");
      assert.equal(workers[0].stale, true);
      assert.ok(workers[0].heartbeatAgeMs >= 3_600_000);
      const text = await prismq(cwd, ["workers"]);
      assert.match(text.stdout, /\ngone +elsewhere +1 .* stale +4 +noop\n$/);
    });

    test("migrate --json and demo", async () => {
      assert.deepEqual(await prismqJson(cwd, ["migrate"]), {
        database: "./prismq.db",
        schemaVersion: LATEST_SCHEMA,
      });
      const demo = await prismq(cwd, ["demo"]);
      assert.equal(demo.code, 0, demo.stderr);
      assert.equal(demo.stderr, "");
      const headings = demo.stdout.split("\n").filter((line) => line.startsWith("== "));
      assert.deepEqual(headings.slice(0, 5), [
        "== 1. Basic registration",
        "== 2. Worker integration",
        "== 3. Global registry",
        "== 4. Handler override",
        "== 5. Error for an unregistered type",
      ]);
    });

    test("a libSQL server nobody answers at: exit 1, one line naming it (the client is linked in)", async () => {
      const url = `http://127.0.0.1:${await closedPort()}`;
      const r = await prismq(cwd, ["status", "--db", url]);
      assert.equal(r.code, 1, r.stderr);
      assertOneLine(r.stderr, new RegExp(`^prismq status: Cannot reach the libSQL server at '${url}'`));
    });

    test("a server that accepts connections and never answers: exit 1 within the deadline, naming it", async () => {
      const server = await silentServer();
      try {
        for (const url of [`http://127.0.0.1:${server.port}`, `ws://127.0.0.1:${server.port}`]) {
          for (const argv of [["status"], ["run", "--until-empty"]]) {
            const env = { ...baseEnv(), PRISMQ_DB_TIMEOUT_MS: "500" };
            const r = await within(
              20_000,
              `prismq ${argv[0]} --db ${url}`,
              prismq(cwd, [...argv, "--db", url], { env }),
            );
            assert.equal(r.code, 1, r.stderr);
            assertOneLine(
              r.stderr,
              new RegExp(`^prismq ${argv[0]}: The libSQL server at '${url}' did not answer within 500 ms`),
            );
          }
        }
      } finally {
        await server.close();
      }
    });

    test("a database in a missing folder: exit 1, one line, no stack trace", async () => {
      const r = await prismq(cwd, ["status", "--db", "./no/such/folder/q.db"]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, "");
      assertOneLine(
        r.stderr,
        /^prismq status: Cannot open database '\.\/no\/such\/folder\/q\.db': the folder/,
      );
      const viaEnv = await prismq(cwd, ["list"], { env: { ...baseEnv(), PRISMQ_DB_URL: "./nope/q.db" } });
      assert.equal(viaEnv.code, 1);
      assertOneLine(viaEnv.stderr, /Cannot open database '\.\/nope\/q\.db'/);
      assert.equal(existsSync(join(cwd, "no")), false);
    });
  });

  describe("on a PostgreSQL server (the postgres driver is linked in)", () => {
    const skip = POSTGRES_DATABASE.skip;

    /** The binary's environment for the password role's database at `url`: by PRISMQ_DB_URL and PGPASSWORD. */
    function serverEnv(url: string, password = ROLE_PASSWORD): Record<string, string> {
      return { ...baseEnv(), PRISMQ_DB_URL: url, PGPASSWORD: password };
    }

    /** Fails unless `exit` is free of the password, on both streams. */
    function assertNoPassword(exit: Exit, password = ROLE_PASSWORD): void {
      assert.ok(
        !(exit.stdout + exit.stderr).includes(password),
        `the password was printed:\n${exit.stdout}${exit.stderr}`,
      );
    }

    test("two binaries drain 1,000 tasks, each once, logging in with PGPASSWORD; no command prints it", {
      skip,
    }, async () => {
      const cwd = emptyFolder();
      const { url, drop } = await passwordRoleDatabase();
      const env = serverEnv(url);
      try {
        const lines = Array.from(
          { length: 1000 },
          (_, i) => JSON.stringify({ type: "noop", payload: {}, idempotencyKey: `k${i}` }),
        );
        const bulk = await prismq(cwd, ["enqueue", "--ndjson", "-", "--json"], {
          env,
          stdin: lines.join("\n"),
        });
        assert.equal(bulk.code, 0, bulk.stderr);
        assertNoPassword(bulk);

        const runs = await Promise.all(
          ["a", "b"].map((id) => prismq(cwd, ["run", "--until-empty", "--json", "--worker-id", id], { env })),
        );
        const completed = runs.map((run) => {
          assert.equal(run.code, 0, run.stderr);
          assert.equal(run.stderr, "");
          assertNoPassword(run);
          return jsonLines(run.stdout).filter((e) => e.event === "completed").map((e) => e.taskId as number);
        });
        const all = completed.flat().sort((x, y) => x - y);
        assert.equal(all.length, 1000);
        assert.equal(new Set(all).size, 1000, "no task ran twice");

        const status = await prismq(cwd, ["status", "--json"], { env });
        assert.equal(status.code, 0, status.stderr);
        assert.deepEqual(JSON.parse(status.stdout).counts, {
          waiting: 0,
          queued: 0,
          running: 0,
          completed: 1000,
          failed: 0,
          cancelled: 0,
        });
        for (
          const argv of [["migrate"], ["status"], ["list", "--limit", "1"], ["show", String(all[0])], [
            "workers",
          ]]
        ) {
          const r = await prismq(cwd, argv, { env });
          assert.equal(r.code, 0, `${argv.join(" ")}: ${r.stderr}`);
          assertNoPassword(r);
        }
        assert.match(
          (await prismq(cwd, ["migrate"], { env })).stdout,
          new RegExp(`^Database ${RegExp.escape(url)} is at`),
        );
        assert.deepEqual(readdirSync(cwd), [], "nothing written to the working folder");
      } finally {
        await drop();
      }
    });

    test("a wrong password, in the URL or PGPASSWORD, and a closed port: exit 1, one line, no password", {
      skip,
    }, async () => {
      const cwd = emptyFolder();
      const { url, role, drop } = await passwordRoleDatabase();
      const wrong = "Wrong-2b7d-not-it";
      try {
        const refused = new RegExp(
          `^prismq status: The PostgreSQL server at '${RegExp.escape(url)}' refused the login: password ` +
            `authentication failed for user "${role}"\\.`,
        );
        const inUrl = await prismq(cwd, [
          "status",
          "--db",
          Object.assign(new URL(url), { password: wrong }).toString(),
        ]);
        const inEnv = await prismq(cwd, ["status"], { env: serverEnv(url, wrong) });
        for (const r of [inUrl, inEnv]) {
          assert.equal(r.code, 1, r.stderr);
          assert.equal(r.stdout, "");
          assertOneLine(r.stderr, refused);
          assertNoPassword(r, wrong);
        }
        const port = await closedPort();
        const closed = await prismq(cwd, [
          "run",
          "--until-empty",
          "--db",
          `postgres://${role}:${wrong}@127.0.0.1:${port}/q`,
        ]);
        assert.equal(closed.code, 1, closed.stderr);
        assertOneLine(
          closed.stderr,
          new RegExp(
            `^prismq run: Cannot reach the PostgreSQL server at 'postgres://${role}@127\\.0\\.0\\.1:${port}/q'`,
          ),
        );
        assertNoPassword(closed, wrong);
      } finally {
        await drop();
      }
    });

    test("a server that accepts connections and never answers: exit 1 within the deadline, naming it", {
      skip,
    }, async () => {
      const cwd = emptyFolder();
      const server = await silentServer();
      try {
        const url = `postgres://ada:${ROLE_PASSWORD}@127.0.0.1:${server.port}/q`;
        const env = { ...baseEnv(), PRISMQ_DB_TIMEOUT_MS: "500" };
        const commands = [["status"], ["run", "--until-empty"]];
        const exits = await within(
          20_000,
          "prismq status and run",
          Promise.all(commands.map((argv) => prismq(cwd, [...argv, "--db", url], { env }))),
        );
        exits.forEach((r, i) => {
          assert.equal(r.code, 1, r.stderr);
          assertOneLine(
            r.stderr,
            new RegExp(
              `^prismq ${
                commands[i]![0]
              }: The PostgreSQL server at 'postgres://ada@127\\.0\\.0\\.1:${server.port}/q' ` +
                `did not answer within 500 ms`,
            ),
          );
          assertNoPassword(r);
        });
      } finally {
        await server.close();
      }
    });
  });

  test("run whose database file is deleted stops: exit 1, one line naming the file", async () => {
    const cwd = emptyFolder();
    assert.equal((await prismq(cwd, ["enqueue", "noop"])).code, 0);
    const run = start(bin, ["run", "--poll", "20ms"], { cwd });
    try {
      await waitFor(() => run.stdout.includes("completed task"), 60_000, "the worker's first task");
      for (const suffix of ["", "-wal", "-shm"]) rmSync(join(cwd, `prismq.db${suffix}`), { force: true });
      const exit = await within(60_000, "prismq run", run.done);
      assert.equal(exit.code, 1, exit.stderr);
      assertOneLine(exit.stderr, /^prismq run: The database file '.*prismq\.db' was deleted or moved while/);
    } finally {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill("SIGKILL");
      await run.done.catch(() => {});
    }
  });

  test("lone surrogates in a key, a type or a payload are refused before writing: exit 2, nothing stored", async () => {
    // An argument reaches the process as UTF-8 bytes, which cannot hold a lone surrogate (the runtime
    // decodes bytes that would be one, ED A0 80, as U+FFFD characters): it arrives through JSON's \u escapes, in a
    // payload argument, on standard input, in a payload file and in NDJSON lines.
    const cwd = emptyFolder();
    const good = await prismq(cwd, ["enqueue", "noop", "--key", "kept"]);
    assert.equal(good.code, 0, good.stderr);
    const email = (subject: string) => `{"to": "a@example.com", "subject": "${subject}", "body": "b"}`;
    writeFileSync(join(cwd, "payload.json"), email("x\\udc00"));
    const refusedPayload =
      /^prismq enqueue: The payload for task type 'send_email' is not well-formed Unicode/;
    for (
      const [args, stdin] of [
        [["enqueue", "send_email", email("x\\ud800")], undefined],
        [["enqueue", "send_email", "-"], email("\\ud83dx")],
        [["enqueue", "send_email", "--payload-file", "payload.json"], undefined],
      ] as const
    ) {
      const r = await prismq(cwd, [...args], { stdin });
      assert.equal(r.code, 2, `prismq ${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stdout, "");
      assertOneLine(r.stderr, refusedPayload);
    }
    const lines = [
      '{"type": "noop", "idempotencyKey": "a\\ud800"}',
      '{"type": "noop\\udfff"}',
      `{"type": "send_email", "payload": ${email("\\ud800\\ud800")}}`,
      '{"type": "noop", "idempotencyKey": "kept\\udc00"}',
    ];
    const bulk = await prismq(cwd, ["enqueue", "--ndjson", "-"], { stdin: lines.join("\n") + "\n" });
    assert.equal(bulk.code, 2, bulk.stderr);
    assert.equal(bulk.stdout, "Enqueued 0 tasks from 4 lines; 4 bad lines were skipped.\n");
    const reported = bulk.stderr.trimEnd().split("\n");
    assert.equal(reported.length, 4, bulk.stderr);
    assert.match(reported[0], /^line 1: idempotencyKey is not well-formed Unicode: .*\\ud800 at index 1/);
    assert.match(reported[1], /^line 2: The task type "noop\\udfff" is not well-formed Unicode/);
    assert.match(reported[2], /^line 3: The payload for task type 'send_email' is not well-formed Unicode/);
    assert.match(reported[3], /^line 4: idempotencyKey is not well-formed Unicode/);
    const tasks = await prismqJson<Task[]>(cwd, ["list"]);
    assert.deepEqual(tasks.map((t) => [t.type, t.idempotencyKey]), [["noop", "kept"]], "only the good task");
  });

  test("enqueue --ndjson skips a 64 MiB line as it reads it, holding no more than the limit of it", async () => {
    const cwd = emptyFolder();
    /** Exit, output, and the peak memory in KiB, as GNU time measures it. */
    const measured = async (stdin: string) => {
      const r = await prismq(cwd, ["enqueue", "--ndjson", "-", "--json"], { stdin, time: true });
      const peak = Number(/(\d+)\s*$/.exec(r.stderr)?.[1]);
      return { ...r, peakKiB: peak };
    };
    const small = await measured('{"type": "noop"}\n');
    assert.equal(small.code, 0, small.stderr);
    const huge = await measured(
      `{"type": "noop", "payload": {"pad": "${"x".repeat(64 * 1024 * 1024)}"}}\n{"type": "noop"}\n`,
    );
    assert.equal(huge.code, 2, huge.stderr);
    const report = JSON.parse(huge.stdout);
    assert.equal(report.enqueued, 1, "the line after the long one is written");
    assert.equal(report.invalid.length, 1);
    assert.match(report.invalid[0].error, /longer than 1114112 bytes/);
    const grownMiB = (huge.peakKiB - small.peakKiB) / 1024;
    assert.ok(grownMiB < 48, `the worker's peak memory grew by ${grownMiB.toFixed(0)} MiB for a 64 MiB line`);
  });

  test("a large --json output through a pipe to a slow reader arrives whole", async () => {
    const cwd = emptyFolder();
    const lines = Array.from({ length: 10_000 }, (_, i) => JSON.stringify({ type: "noop", priority: i }));
    const bulk = await prismq(cwd, ["enqueue", "--ndjson", "-"], { stdin: lines.join("\n") });
    assert.equal(bulk.code, 0, bulk.stderr);
    // More than a pipe holds: the process must not exit before its output is written.
    const r = await prismq(cwd, ["list", "--json", "--limit", "100000"], { slowReaderMs: 300 });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.length > 1_000_000, `only ${r.stdout.length} characters arrived`);
    const tasks = JSON.parse(r.stdout) as Task[];
    assert.equal(tasks.length, 10_000);
  });

  test("run starts itself again with JavaScriptCore's FTL off: same process and name; a variable the user set stays", async () => {
    const cwd = emptyFolder();
    const FTL = "BUN_JSC_useFTLJIT";
    // Started by a link of another name, as a deployment may: the restarted process keeps that name.
    symlinkSync(bin, join(cwd, "myworker"));
    /** The variable as the running worker's environment has it (Linux: /proc/<pid>/environ). */
    const ftlOf = (pid: number) =>
      readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").find((entry) => entry.startsWith(`${FTL}=`));
    for (
      const [env, expected] of [[baseEnv(), `${FTL}=0`], [{ ...baseEnv(), [FTL]: "1" }, `${FTL}=1`]] as const
    ) {
      const run = start("./myworker", ["run", "--worker-id", "jit", "--json"], { cwd, env });
      try {
        await waitFor(() => run.stdout.includes(" started: "), 30_000, "the worker to start");
        const pid = run.child.pid!;
        assert.equal(ftlOf(pid), expected);
        assert.equal(readFileSync(`/proc/${pid}/comm`, "utf8").trim(), "myworker");
        const workers = await prismqJson<{ id: string; pid: number }[]>(cwd, ["workers"]);
        assert.deepEqual(workers.map((w) => [w.id, w.pid]), [["jit", pid]], "one worker, this process");
        const enqueued = await prismq(cwd, ["enqueue", "noop", JSON.stringify({ sleepMs: 0 })]);
        assert.equal(enqueued.code, 0, enqueued.stderr);
        await waitFor(
          () => jsonLines(run.stdout).some((e) => e.event === "completed"),
          30_000,
          "a task to run",
        );
        process.kill(pid, "SIGTERM");
        const exit = await within(60_000, "prismq run after SIGTERM", run.done);
        assert.equal(exit.code, 0, exit.stderr);
        assert.equal(exit.stderr, "");
      } finally {
        if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill("SIGKILL");
        await run.done.catch(() => {});
      }
    }
  });

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    test(`${signal} during run: running tasks finish in the grace period, long ones go back to the queue, exit 0`, async () => {
      const cwd = emptyFolder();
      // Short tasks: requests the test answers only once the worker has taken the signal, so that they are
      // running at the stop and finish in its grace period, however fast or slowly this machine runs them.
      // Long ones: a minute, far beyond the grace period and anything the run may take.
      const server = await heldRequests();
      const GRACE_MS = 5000;
      const ndjson = [
        ...[1, 2, 3].map((i) => ({
          type: "http_request",
          payload: { url: server.url, timeoutMs: 300_000 },
          idempotencyKey: `short-${i}`,
        })),
        ...[1, 2, 3].map((i) => ({
          type: "noop",
          payload: { sleepMs: 60_000 },
          idempotencyKey: `long-${i}`,
        })),
      ].map((line) => JSON.stringify(line)).join("\n");
      const bulk = await prismq(cwd, ["enqueue", "--ndjson", "-"], { stdin: ndjson });
      assert.equal(bulk.code, 0, bulk.stderr);

      const started = performance.now();
      const run = start(bin, ["run", "--concurrency", "8", "--grace", `${GRACE_MS}ms`, "--json"], { cwd });
      try {
        await waitFor(
          () =>
            jsonLines(run.stdout).filter((e) => e.event === "claimed").length === 6 && server.arrived === 3,
          30_000,
          "the worker to claim all six tasks and send the three requests",
        );
        const status = await prismqJson<
          { counts: Record<string, number>; workers: { pid: number; stale: boolean }[] }
        >(cwd, ["status"]);
        assert.equal(status.counts.running, 6, `all six are running: ${JSON.stringify(status.counts)}`);
        assert.equal(status.workers.length, 1);
        assert.equal(status.workers[0].pid, run.child.pid);
        assert.equal(status.workers[0].stale, false);

        const signalled = performance.now();
        // process.kill, not child.kill: after child.kill, Deno's node:child_process reports the signal it sent
        // as the cause of exit even when the process handled it and exited with its own code.
        process.kill(run.child.pid!, signal);
        const stopping = (e: Record<string, unknown>) =>
          e.event === "note" && String(e.message).startsWith(`${signal}: finishing running tasks`);
        await waitFor(() => jsonLines(run.stdout).some(stopping), 30_000, `the worker to take ${signal}`);
        // The grace period has begun: the short tasks may finish now.
        server.answer();
        const exit = await within(120_000, "prismq run after the signal", run.done);
        const now = performance.now();
        assert.equal(exit.signal, null, `killed by ${exit.signal}: the signal was not handled`);
        assert.equal(exit.code, 0, exit.stderr);
        assert.equal(exit.stderr, "");
        // The grace period began after the signal was sent, and the long tasks had all of it.
        assert.ok(
          now - signalled >= GRACE_MS - 50,
          `the long tasks had their grace period (exited ${(now - signalled).toFixed(0)} ms after ${signal})`,
        );
        // The long tasks started after `started`: had they been waited out, a minute would have passed.
        assert.ok(now - started < 60_000, "the minute-long tasks were waited out, not handed back");

        const events = jsonLines(exit.stdout);
        assert.equal(events.filter(stopping).length, 1);
        assert.equal(events.filter((e) => e.event === "completed").length, 3);
        assert.equal(events.filter((e) => e.event === "released").length, 3);
        assert.match(String(events.at(-1)!.message), /stopped: 3 completed, .* 3 handed back\.$/);

        const tasks = await prismqJson<Task[]>(cwd, ["list"]);
        const byKey = Object.fromEntries(tasks.map((t) => [t.idempotencyKey, [t.status, t.attempts]]));
        assert.deepEqual(byKey, {
          "short-1": ["completed", 1],
          "short-2": ["completed", 1],
          "short-3": ["completed", 1],
          "long-1": ["queued", 0],
          "long-2": ["queued", 0],
          "long-3": ["queued", 0],
        });
        assert.deepEqual(await prismqJson(cwd, ["workers"]), [], "the worker unregistered");
      } finally {
        if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill("SIGKILL");
        await run.done.catch(() => {});
        await server.close();
      }
    });
  }

  test("run whose stdout reader falls behind waits for it, holding no unread lines in memory", async () => {
    const cwd = emptyFolder();
    const TASKS = 5000;
    const ndjson = Array.from({ length: TASKS }, () => '{"type":"noop","payload":{}}').join("\n");
    assert.equal((await prismq(cwd, ["enqueue", "--ndjson", "-"], { stdin: ndjson })).code, 0);
    const db = new QueueDatabase(join(cwd, "prismq.db"));
    const completed = async () => (await new Queue(db).stats()).counts.completed;
    // Two JSON lines per task, a pipe of some 64 KiB: the worker must stop after a few hundred tasks.
    const run = start(bin, ["run", "--json"], { cwd, slowReaderMs: 60_000 });
    try {
      // Once it has started, until two looks 300 ms apart see the same count.
      await waitFor(async () => (await completed()) > 0, 30_000, "the worker's first completed task");
      let before = -1;
      let now = await completed();
      for (let i = 0; i < 50 && now !== before; i++) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        [before, now] = [now, await completed()];
      }
      assert.ok(now < TASKS / 2, `${now} of ${TASKS} tasks ran while nobody read the worker's output`);
      run.child.stdout!.resume();
      await waitFor(async () => (await completed()) === TASKS, 30_000, "all tasks once the output is read");
      // process.kill: Deno's child.kill reports its signal as the cause of exit (see the SIGTERM test).
      process.kill(run.child.pid!, "SIGTERM");
      const exit = await run.done;
      assert.equal(exit.signal, null, `killed by ${exit.signal}`);
      assert.equal(exit.code, 0, exit.stderr);
      assert.equal(
        exit.stdout.split("\n").filter((line) => line.includes('"event":"completed"')).length,
        TASKS,
      );
    } finally {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill("SIGKILL");
      await run.done.catch(() => {});
      await db.close();
    }
  });

  test("run whose stdout reader goes away (| head -1): stops as on SIGTERM, quietly, losing nothing", async () => {
    const cwd = emptyFolder();
    const ndjson = [
      { type: "noop", payload: { sleepMs: 300 }, idempotencyKey: "running" },
      { type: "noop", payload: { sleepMs: 60_000 }, idempotencyKey: "long" },
    ].map((line) => JSON.stringify(line)).join("\n");
    assert.equal((await prismq(cwd, ["enqueue", "--ndjson", "-"], { stdin: ndjson })).code, 0);
    // A grace period many times the 300 ms task, so that it finishes in it however slowly this machine runs;
    // the minute-long task cannot, and goes back.
    const run = start(bin, ["run", "--grace", "3s"], { cwd });
    try {
      await waitFor(() => run.stdout.includes("\n"), 60_000, "the worker's first line");
      // The reader closes its end, as `head -1` does after one line; the next write finds no reader.
      run.child.stdout!.destroy();
      assert.equal((await prismq(cwd, ["enqueue", "noop"])).code, 0);
      // A hang guard, not a speed claim: the worker must stop on its own.
      const exit = await within(60_000, "prismq run after its reader went away", run.done);
      assert.equal(exit.signal, null, `killed by ${exit.signal}`);
      assert.equal(exit.code, 0, exit.stderr);
      assert.doesNotMatch(run.stderr, /EPIPE|\bat .+:\d+:\d+/, "no crash, no stack trace");
      const tasks = await prismqJson<Task[]>(cwd, ["list"]);
      assert.equal(tasks.filter((t) => t.status === "running").length, 0, "nothing left running");
      assert.equal(
        tasks.find((t) => t.idempotencyKey === "long")?.status,
        "queued",
        "the long task handed back",
      );
      assert.equal(tasks.find((t) => t.idempotencyKey === "running")?.status, "completed");
      assert.deepEqual(await prismqJson(cwd, ["workers"]), [], "the worker unregistered");
    } finally {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill("SIGKILL");
      await run.done.catch(() => {});
    }
  });
});
