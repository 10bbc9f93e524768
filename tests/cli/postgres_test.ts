/**
 * Every `prismq` command on a PostgreSQL server (`--db postgres://…` or `PRISMQ_DB_URL`), and the
 * credentials in its URL, which nothing prints: not the output, not an error. The commands run as functions
 * against an in-memory `CliIo` and a real server on 127.0.0.1, a fresh database each; the compiled binary's
 * own tests on a server are in tests/cli_binary_test.ts.
 */
// Not rerun on libsql: PostgreSQL only, no SQLite engine is involved.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Task } from "../../mod.ts";
import { MIGRATIONS } from "../../src/store/postgres/migrations.ts";
import { cli } from "../_cli.ts";
import { assertOneLine, closedPort, jsonLines, TASK_FIELDS } from "../_helpers.ts";
import { POSTGRES_DATABASE } from "../_databases.ts";
import { passwordRoleDatabase, ROLE_PASSWORD } from "../_postgres.ts";
import { type Fixture, TEST_HANDLERS, withFixture } from "./_fixture.ts";

const skip = POSTGRES_DATABASE.skip;
const opts = { handlers: TEST_HANDLERS };
const PG_SCHEMA = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** `url` with `password` in it, as a user might write it. */
function withPassword(url: string, password: string): string {
  const parsed = new URL(url);
  parsed.password = password;
  return parsed.toString();
}

/** `url` without its password, as PrismQ shows it. */
function shown(url: string): string {
  const parsed = new URL(url);
  parsed.password = "";
  return parsed.toString();
}

/** A fixture on a fresh PostgreSQL database whose URL holds a password (the server trusts loopback). */
function withServer(fn: (fx: Fixture, url: string) => Promise<void>): Promise<void> {
  return withFixture(async (fx) => {
    const url = withPassword(fx.dbPath, ROLE_PASSWORD);
    const q: Fixture["q"] = async (argv, options) => {
      const result = await cli([...argv, "--db", url], options);
      for (const output of [result.stdout, result.stderr]) {
        assert.ok(!output.includes(ROLE_PASSWORD), `'${argv.join(" ")}' printed the password:\n${output}`);
      }
      return result;
    };
    const qJson: Fixture["qJson"] = async <T>(argv: string[], options?: Parameters<Fixture["q"]>[1]) => {
      const result = await q([...argv, "--json"], options);
      assert.equal(result.code, 0, `'${argv.join(" ")}' failed: ${result.stderr}`);
      return JSON.parse(result.stdout) as T;
    };
    await fn({ ...fx, q, qJson }, url);
  }, POSTGRES_DATABASE);
}

describe("prismq on a PostgreSQL server", () => {
  test(
    "migrate, status and demo name the server without its password; migrate gives PostgreSQL's schema version",
    {
      skip,
    },
    async () => {
      await withServer(async ({ q, qJson, dbPath }) => {
        assert.deepEqual(await qJson(["migrate"]), { database: shown(dbPath), schemaVersion: PG_SCHEMA });
        assert.equal(
          (await q(["migrate"])).stdout,
          `Database ${shown(dbPath)} is at schema version ${PG_SCHEMA}.\n`,
        );
        const status = await q(["status"]);
        assert.equal(status.code, 0, status.stderr);
        assert.match(status.stdout, new RegExp(`^Database: ${RegExp.escape(shown(dbPath))}\n`));
        const demo = await q(["demo"]);
        assert.equal(demo.code, 0, demo.stderr);
        assert.equal(demo.stderr, "");
        assert.match(demo.stdout, new RegExp(`^PrismQ demo on database '${RegExp.escape(shown(dbPath))}'\n`));
        assert.match(demo.stdout, /worker demo-worker-1 completed 2 task\(s\)/);
      });
    },
  );

  test("enqueue (one, by key, delayed, bulk), list, show, run, status and workers", { skip }, async () => {
    await withServer(async ({ q, qJson }) => {
      const first = await qJson<Task & { created: boolean }>(["enqueue", "chatty", '{"word": "hi"}'], opts);
      assert.deepEqual([first.status, first.created], ["queued", true]);
      assert.deepEqual(Object.keys(first).filter((key) => key !== "created").sort(), TASK_FIELDS);
      const keyed = await qJson<Task & { created: boolean }>(["enqueue", "noop", "--key", "k1"], opts);
      const again = await qJson<Task & { created: boolean }>(["enqueue", "noop", "--key", "k1"], opts);
      assert.deepEqual([again.id, again.created], [keyed.id, false]);
      const later = await qJson<Task>(["enqueue", "noop", "--delay", "10m", "--priority", "-1"], opts);
      assert.equal(later.priority, -1);
      const bulk = await q(["enqueue", "--ndjson", "-"], {
        ...opts,
        stdin: [
          '{"type": "noop", "payload": {}, "idempotencyKey": "k1"}',
          '{"type": "noop", "payload": {}, "idempotencyKey": "k2"}',
          '{"type": "boom", "payload": {}, "maxAttempts": 1}',
          "not json",
        ].join("\n"),
      });
      assert.equal(bulk.code, 2, bulk.stderr);
      assert.match(bulk.stderr, /line 4/);

      const listed = await qJson<Task[]>(["list"]);
      assert.deepEqual(listed.map((task) => task.type), ["boom", "noop", "noop", "noop", "chatty"]);
      const [boom, k2] = listed;
      assert.equal(k2!.idempotencyKey, "k2");
      assert.deepEqual((await qJson<Task[]>(["list", "--type", "noop", "--status", "queued"])).length, 3);

      const run = await q(["run", "--until-empty", "--json", "--worker-id", "pg-worker"], opts);
      assert.equal(run.code, 0, run.stderr);
      const events = jsonLines(run.stdout);
      assert.deepEqual(
        events.filter((e) => e.event === "completed").map((e) => e.taskId).sort(),
        [first.id, keyed.id, k2!.id].sort(),
      );
      assert.deepEqual(events.filter((e) => e.event === "failed").map((e) => e.taskId), [boom!.id]);
      assert.ok(events.some((e) => e.event === "waiting" && e.count === 1), run.stdout);

      const show = await q(["show", String(first.id)]);
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, /^status +completed$/m);
      assert.match(show.stdout, /said hi/);
      const shownJson = await qJson<Task>(["show", String(boom!.id)]);
      assert.deepEqual([shownJson.status, shownJson.errorMessage], ["failed", "kaboom"]);

      const status = await qJson<{ counts: Record<string, number> }>(["status"]);
      assert.deepEqual(status.counts, {
        waiting: 0,
        queued: 1,
        running: 0,
        completed: 3,
        failed: 1,
        cancelled: 0,
      });
      // The worker's row is gone once it stopped.
      assert.deepEqual(await qJson(["workers"]), []);
    });
  });

  test("workers lists live and stale workers, and --prune removes the stale", { skip }, async () => {
    await withServer(async ({ q, qJson, inspect }) => {
      const now = Date.now();
      await inspect((_, db) =>
        db.transaction(async (tx) => {
          const insert = "INSERT INTO workers (id, host, pid, started_at, heartbeat_at, concurrency, " +
            "handler_types) VALUES ($1, $2, $3, $4, $5, $6, $7)";
          await tx.execute(insert, ["w-fresh", "h1", 11, now - 60_000, now, 4, '["noop"]']);
          await tx.execute(insert, ["w-old", "h2", 22, now - 3_600_000, now - 600_000, 2, "[]"]);
        })
      );
      type View = { id: string; stale: boolean };
      assert.deepEqual(
        (await qJson<View[]>(["workers"])).map((w) => [w.id, w.stale]),
        [["w-fresh", false], ["w-old", true]],
      );
      assert.match((await q(["status"])).stdout, /\nWorkers: 1 live, 1 stale\n {2}w-fresh \(host h1, pid 11/);
      assert.equal((await q(["workers", "--prune"])).stdout, "Removed 1 stale worker.\n");
      assert.deepEqual((await qJson<View[]>(["workers"])).map((w) => w.id), ["w-fresh"]);
    });
  });

  test("cancel, retry (one and --failed) and purge", { skip }, async () => {
    await withServer(async ({ q, qJson }) => {
      const failing = await qJson<Task>(["enqueue", "boom", "{}", "--max-attempts", "1"], opts);
      const queued = await qJson<Task>(["enqueue", "noop"], opts);
      assert.equal((await q(["run", "--until-empty", "--types", "boom"], opts)).code, 0);
      assert.equal((await qJson<Task>(["show", String(failing.id)])).status, "failed");

      assert.equal((await qJson<Task>(["cancel", String(queued.id)])).status, "cancelled");
      const again = await q(["cancel", String(queued.id)]);
      assert.equal(again.code, 1);
      assertOneLine(again.stderr, /^prismq cancel: .*cancelled/);
      assert.equal((await q(["cancel", "999"])).code, 2);

      const retried = await qJson<Task>(["retry", String(queued.id)]);
      assert.deepEqual([retried.status, retried.attempts], ["queued", 0]);
      const all = await q(["retry", "--failed"]);
      assert.equal(all.code, 0, all.stderr);
      assert.match(all.stdout, /Queued 1 failed task again/);
      assert.equal((await q(["run", "--until-empty"], opts)).code, 0);
      assert.equal((await qJson<Task>(["show", String(failing.id)])).status, "failed");

      const purge = await qJson<{ deleted: number }>([
        "purge",
        "--status",
        "completed,failed",
        "--older-than",
        "0s",
      ]);
      // The newest task stays, so that its id is never handed out again.
      assert.equal(purge.deleted, 1);
      assert.deepEqual((await qJson<Task[]>(["list"])).map((task) => task.id), [queued.id]);
    });
  });

  test(
    "backup_database fails at once on PostgreSQL, saying why, without the password",
    { skip },
    async () => {
      await withServer(async ({ q, qJson, dbPath }) => {
        const task = await qJson<Task>(["enqueue", "backup_database", '{"path": "copy.db"}']);
        assert.equal((await q(["run", "--until-empty"])).code, 0);
        const failed = await qJson<Task>(["show", String(task.id)]);
        assert.deepEqual([failed.status, failed.attempts], ["failed", 1]);
        assert.equal(
          failed.errorMessage,
          `Cannot back up the database at '${shown(dbPath)}': it is a PostgreSQL server, which PrismQ ` +
            `cannot copy to a local file. Back it up with the database's own tools.`,
        );
      });
    },
  );

  test(
    "PRISMQ_DB_URL with the password reaches the server without --db; a libSQL token in the environment is not used",
    {
      skip,
    },
    async () => {
      const { url, drop } = await passwordRoleDatabase();
      try {
        const env = {
          PRISMQ_DB_URL: withPassword(url, ROLE_PASSWORD),
          PRISMQ_DB_AUTH_TOKEN: "a-libsql-token",
        };
        const enqueued = await cli(["enqueue", "noop", "--json"], { env });
        assert.equal(enqueued.code, 0, enqueued.stderr);
        const run = await cli(["run", "--until-empty"], { env });
        assert.equal(run.code, 0, run.stderr);
        const status = await cli(["status", "--json"], { env });
        assert.equal(JSON.parse(status.stdout).counts.completed, 1);
        for (const result of [enqueued, run, status]) {
          assert.ok(!(result.stdout + result.stderr).includes(ROLE_PASSWORD));
        }
      } finally {
        await drop();
      }
    },
  );
});

describe("prismq's errors on a PostgreSQL URL: one line, never the password", () => {
  /** Runs `argv` on `db`; it must fail with `code` and one line on stderr matching `pattern`, and no password. */
  async function fails(db: string, code: number, pattern: RegExp, secret = ROLE_PASSWORD): Promise<void> {
    for (const argv of [["status"], ["enqueue", "noop"], ["run", "--until-empty"], ["migrate"]]) {
      const result = await cli([...argv, "--db", db]);
      assert.equal(result.code, code, `${argv.join(" ")}: ${result.stderr}`);
      assert.equal(result.stdout, "");
      assertOneLine(result.stderr, pattern);
      assert.ok(!result.stderr.includes(secret), `${argv.join(" ")} printed the password: ${result.stderr}`);
    }
  }

  test("a wrong password is refused: exit 1, naming the user and the server", { skip }, async () => {
    const { url, role, drop } = await passwordRoleDatabase();
    try {
      const parsed = new URL(url);
      parsed.password = "Wrong-9c1e-not-it";
      await fails(
        parsed.toString(),
        1,
        new RegExp(
          `^prismq \\w+: The PostgreSQL server at '${RegExp.escape(shown(parsed.toString()))}' refused the ` +
            `login: password authentication failed for user "${role}"\\. Check the user and password`,
        ),
        "Wrong-9c1e-not-it",
      );
      // The right one is let in.
      parsed.password = ROLE_PASSWORD;
      const ok = await cli(["enqueue", "noop", "--db", parsed.toString()]);
      assert.equal(ok.code, 0, ok.stderr);
    } finally {
      await drop();
    }
  });

  test("a port nothing listens on: exit 1, cannot reach the server", { skip }, async () => {
    const port = await closedPort();
    await fails(
      `postgres://ada:${ROLE_PASSWORD}@127.0.0.1:${port}/queue`,
      1,
      new RegExp(
        `^prismq \\w+: Cannot reach the PostgreSQL server at 'postgres://ada@127\\.0\\.0\\.1:${port}/queue'`,
      ),
    );
  });

  test("a mistyped scheme, and a URL that cannot be read: exit 2", { skip }, async () => {
    await fails(
      `postgress://ada:${ROLE_PASSWORD}@127.0.0.1/queue`,
      2,
      /^prismq \w+: The database URL 'postgress:\/\/ada@127\.0\.0\.1\/queue' is invalid: no store opens 'postgress:' URLs/,
    );
    await fails(
      `postgres://ada:${ROLE_PASSWORD}@127.0.0.1:port/queue`,
      2,
      /^prismq \w+: The database URL 'postgres:…' is invalid: it is not a URL/,
    );
  });
});
