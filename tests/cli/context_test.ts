/**
 * What every command shares (`src/cli/context.ts`): the database from --db or PRISMQ_DB_URL, the
 * environment, and plain or coloured output.
 *
 * The commands run as functions against an in-memory `CliIo` and a real database file.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Task } from "../../mod.ts";
import { cli, fakeIo } from "../_cli.ts";
import { withDatabase, withQueue } from "../../src/cli/context.ts";
import { openDatabaseFiles } from "../../src/store/sqlite/connection.ts";
import {
  ANY_ESCAPE,
  assertOneLine,
  closedPort,
  LATEST_SCHEMA,
  makeTempDir,
  rejectionOf,
} from "../_helpers.ts";
import { SGR, TEST_HANDLERS, withFixture } from "./_fixture.ts";

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

  test("--db reads URLs as the store does; one it cannot read (another host, a query, no host, a scheme no store opens) is exit 2", async () => {
    await withFixture(async ({ dir }) => {
      for (
        const url of [`file://LOCALHOST${dir}/a.db`, `file:${dir}/with%20space.db`, `file://${dir}/b.db`]
      ) {
        const r = await cli(["migrate", "--db", url]);
        assert.equal(r.code, 0, `${url}: ${r.stderr}`);
      }
      assert.equal(existsSync(join(dir, "a.db")), true);
      assert.equal(existsSync(join(dir, "with space.db")), true);
      assert.equal(existsSync(join(dir, "b.db")), true);
      for (
        const [url, why] of [
          ["file://db-server/x.db", /names the host 'db-server'/],
          [`file:${dir}/c.db?mode=ro`, /query parameters/],
          [`file:${dir}/%zz.db`, /malformed percent-escape/],
          ["libsql://", /with a host/],
          ["http://bad host:99999", /with a host/],
          ["redis://127.0.0.1:6379", /no store opens 'redis:' URLs/],
        ] as const
      ) {
        const r = await cli(["status", "--db", url]);
        assert.equal(r.code, 2, url);
        assertOneLine(r.stderr, new RegExp(`^prismq status: The database URL '.*' is invalid: `), why);
      }
      const blank = await cli(["status", "--db", ""]);
      assert.equal(blank.code, 2);
      assertOneLine(blank.stderr, /^prismq status: The database location is empty\./);
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

  test("PRISMQ_DB_AUTH_TOKEN, a libSQL server's token, is not given to a PostgreSQL server", async () => {
    const port = await closedPort();
    const env = { PRISMQ_DB_AUTH_TOKEN: "t0ken", PRISMQ_DB_TIMEOUT_MS: "2000" };
    const r = await cli(["status", "--db", `postgres://app:s3cret@127.0.0.1:${port}/queue`], { env });
    assert.equal(r.code, 1, r.stderr);
    assertOneLine(r.stderr);
    assert.match(r.stderr, /Cannot reach the PostgreSQL server/);
    assert.doesNotMatch(r.stderr, /authToken|s3cret|t0ken/);
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

describe("withDatabase and withQueue", () => {
  test("open the --db database, migrated, for the work, and close it however the work ends", async () => {
    const { dir, remove } = makeTempDir("prismq-cli-");
    try {
      const dbPath = join(dir, "q.db");
      const open = () => openDatabaseFiles().includes(resolve(dbPath));
      const io = fakeIo();
      const tasks = await withQueue(io, { db: dbPath }, async (queue) => {
        assert.equal(open(), true, "open during the work");
        await queue.enqueue("noop", {});
        return (await queue.list()).length;
      });
      assert.equal(tasks, 1);
      assert.equal(open(), false, "closed after the work");
      const failure = await rejectionOf(
        withDatabase(io, { db: dbPath }, () => Promise.reject(new Error("The work failed."))),
      );
      assert.equal((failure as Error).message, "The work failed.");
      assert.equal(open(), false, "closed after a failure too");
      const missing = await rejectionOf(
        withDatabase(io, { db: join(dir, "no", "q.db") }, () => Promise.resolve()),
      );
      assert.match((missing as Error).message, /the folder '.*no' does not exist/);
    } finally {
      remove();
    }
  });
});
