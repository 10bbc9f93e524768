/**
 * `prismq serve` and `prismq run --serve` from source, as real processes on a SQLite file and PostgreSQL;
 * and the refusals that come before the server listens (in process: nothing is bound).
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { start } from "./_binary.ts";
import { cli } from "./_cli.ts";
import { PROCESS_DATABASES } from "./_databases.ts";
import { makeTempDir } from "./_helpers.ts";
import { listenHttp, listenNode } from "../src/cli/http_listen.ts";
import { QueueDatabase } from "../mod.ts";
import { createHttpHandler } from "../src/server/app.ts";
import { type Runner, serveAndDrain, workerServes } from "./_serve_scenarios.ts";

const PRISMQ = new URL("../scripts/prismq.ts", import.meta.url).pathname;

const fromSource: Runner = (cwd, args, env = {}) =>
  start(process.execPath, ["run", "-A", PRISMQ, ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: "1", ...env } as Record<string, string>,
  });

for (const database of PROCESS_DATABASES) {
  describe(`prismq serve from source on ${database.name}`, { skip: database.skip }, () => {
    test("serves the API; a prismq run process drains what was enqueued over HTTP; SIGTERM stops it", () =>
      serveAndDrain(fromSource, database));
    test("prismq run --serve runs a task enqueued over HTTP and stops with SIGTERM", () =>
      workerServes(fromSource, database));
  });
}

describe("prismq serve refuses at start, before it listens", () => {
  const { dir, remove } = makeTempDir("prismq-serve-refusals-");
  const db = `${dir}/queue.db`;

  test("a non-loopback address without a token: exit 2, saying why and what to set", async () => {
    for (const address of ["0.0.0.0:7420", "[::]:7420", "192.0.2.1:80"]) {
      const result = await cli(["serve", "--listen", address, "--db", db]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /Refusing to listen on .* without a token.*Set PRISMQ_ADMIN_TOKENS/);
    }
    const readOnly = await cli(["serve", "--listen", "0.0.0.0:7420", "--db", db], {
      env: { PRISMQ_READ_TOKENS: "read-token-0123456789abcdef" },
    });
    assert.equal(readOnly.code, 2);
    assert.match(readOnly.stderr, /read-only tokens only/);
    const worker = await cli(["run", "--serve", "0.0.0.0:7420", "--db", db]);
    assert.equal(worker.code, 2);
    assert.match(worker.stderr, /prismq run: Refusing to listen on 0\.0\.0\.0:7420 without a token/);
  });

  test("bad addresses, limits and tokens: exit 2 with one line, the token never shown", async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [["serve", "--listen", "localhost"], {}, /--listen 'localhost' is not an address to listen on/],
      [["serve", "--listen", "127.0.0.1:70000"], {}, /not an address/],
      [["serve", "--max-body", "0"], {}, /--max-body/],
      [["serve", "--max-body", "lots"], {}, /--max-body/],
      [["serve", "extra"], {}, /extra/],
      [["run", "--max-body", "10"], {}, /--max-body is an option of --serve/],
      [
        ["serve"],
        { PRISMQ_ADMIN_TOKENS: "short-secret" },
        /Token 1 of PRISMQ_ADMIN_TOKENS is shorter than 16/,
      ],
      [
        ["serve"],
        { PRISMQ_READ_TOKENS: "ok-token-0123456789,has space inside!!" },
        /Token 2 of PRISMQ_READ_TOKENS/,
      ],
    ];
    for (const [args, env, words] of cases) {
      const result = await cli([...args, "--db", db], { env });
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, words);
      assert.equal(result.stderr.trim().split("\n").length, 1);
      for (const token of Object.values(env)) {
        for (const part of token.split(",")) {
          assert.ok(!result.stderr.includes(part), "the token is never shown");
        }
      }
    }
  });

  test("an address in use: exit 1, naming it", async () => {
    const taken = await listenHttp(() => Promise.resolve(new Response("")), "127.0.0.1", 0);
    try {
      const result = await cli(["serve", "--listen", `127.0.0.1:${taken.port}`, "--db", db]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${taken.port}: the address is in use`),
      );
    } finally {
      await taken.close();
    }
  });

  test("--help says every flag, the tokens' variables and the loopback rule", async () => {
    const serve = await cli(["serve", "--help"]);
    assert.equal(serve.code, 0);
    for (
      const words of [
        "--listen",
        "--max-body",
        "PRISMQ_ADMIN_TOKENS",
        "PRISMQ_READ_TOKENS",
        "loopback",
        "/api/openapi.json",
      ]
    ) {
      assert.ok(serve.stdout.includes(words), words);
    }
    const run = await cli(["run", "--help"]);
    assert.match(run.stdout, /--serve <host:port>/);
    assert.match((await cli(["--help"])).stdout, /serve +Serve the HTTP API/);
  });

  after(() => remove());
});

test("the node:http adapter (Node's listener) carries methods, headers, bodies and statuses both ways", async () => {
  const { dir, remove } = makeTempDir("prismq-node-listener-");
  const db = new QueueDatabase(`${dir}/queue.db`);
  await db.initializeSchema();
  const listener = await listenNode(createHttpHandler(db, { maxBodyBytes: 2048 }), "127.0.0.1", 0);
  const url = `http://127.0.0.1:${listener.port}`;
  try {
    const created = await fetch(`${url}/api/tasks`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "work", payload: { text: "héllo" } }),
    });
    assert.equal(created.status, 201);
    const { task } = await created.json() as { task: { id: number; payload: unknown } };
    assert.deepEqual(task.payload, { text: "héllo" });
    const got = await fetch(`${url}/api/tasks/${task.id}`);
    assert.equal(got.headers.get("content-type"), "application/json");
    assert.equal(got.headers.get("cache-control"), "no-store");
    assert.deepEqual((await got.json() as { payload: unknown }).payload, { text: "héllo" });
    const large = await fetch(`${url}/api/tasks`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "work", payload: { text: "x".repeat(4096) } }),
    });
    assert.equal(large.status, 413);
    await large.body?.cancel();
    const deleted = await fetch(`${url}/api/tasks/${task.id}`, { method: "DELETE" });
    assert.equal(deleted.status, 409, "the newest task is kept");
    await deleted.body?.cancel();
  } finally {
    await listener.close();
    await db.close();
    remove();
  }
});
