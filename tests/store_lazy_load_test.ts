/**
 * SQLite users do not pay for the PostgreSQL driver: `mod.ts` reaches the PostgreSQL store (and the
 * `postgres` package) only through a literal dynamic import, made on a PostgreSQL store's first call. The
 * module graph shows it statically; a process that opens a file and works on it shows it at run time. That
 * the single binary still links the store is tests/cli_binary_test.ts's (`--db postgres://…`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Queue, QueueDatabase } from "../mod.ts";
import { DatabaseError } from "../src/errors.ts";
import { LazyPostgresStore, postgresStoreLoaded } from "../src/store/postgres/lazy_store.ts";
import { freshSchema, postgresUnavailable } from "./_postgres.ts";
import { closedPort, makeTempDir, REPO } from "./_helpers.ts";

interface Dependency {
  code?: { specifier?: string };
  isDynamic?: boolean;
}
interface GraphModule {
  specifier: string;
  dependencies?: Dependency[];
}

/** The modules `root` reaches by static imports of code (not `import type`, not `import()`). */
async function staticallyReached(root: string): Promise<Set<string>> {
  const { stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", root],
    cwd: REPO,
    stdout: "piped",
    stderr: "null",
  }).output();
  const graph = JSON.parse(new TextDecoder().decode(stdout)) as { roots: string[]; modules: GraphModule[] };
  const bySpecifier = new Map(graph.modules.map((module) => [module.specifier, module]));
  const reached = new Set<string>();
  const next = [...graph.roots];
  while (next.length > 0) {
    const specifier = next.pop()!;
    if (reached.has(specifier)) continue;
    reached.add(specifier);
    for (const dependency of bySpecifier.get(specifier)?.dependencies ?? []) {
      const target = dependency.code?.specifier;
      if (target && !dependency.isDynamic) next.push(target);
    }
  }
  return reached;
}

test("mod.ts imports neither the postgres driver nor the PostgreSQL store statically", async () => {
  const reached = [...await staticallyReached(join(REPO, "mod.ts"))].map((url) =>
    url.startsWith("file:") ? fileURLToPath(url) : url
  );
  assert.ok(reached.some((path) => path.endsWith(join("src", "store", "sqlite", "store.ts"))), "sanity");
  const driver = reached.filter((path) => /node_modules[\\/]postgres[\\/]|^npm:\/?postgres@/.test(path));
  assert.deepEqual(driver, []);
  const store = reached.filter((path) => /store[\\/]postgres[\\/](store|connection)\.ts$/.test(path));
  assert.deepEqual(store, []);
});

test("opening and using a SQLite file does not load the PostgreSQL store; a PostgreSQL call does", async () => {
  const { dir, remove } = makeTempDir();
  try {
    const db = new QueueDatabase(join(dir, "queue.db"));
    await db.initializeSchema();
    await new Queue(db).enqueue("t", {});
    await db.close();
    assert.equal(postgresStoreLoaded(), false);

    const pg = new QueueDatabase(`postgres://nobody@127.0.0.1:${await closedPort()}/none`, {
      connectTimeoutMs: 1000,
    });
    await assert.rejects(pg.initializeSchema());
    await pg.close();
    assert.equal(postgresStoreLoaded(), true);
  } finally {
    remove();
  }
});

test(
  "a loaded PostgreSQL store, once closed, rejects every call with the closed error, as the store itself would",
  { skip: postgresUnavailable() },
  async () => {
    const database = await freshSchema();
    try {
      const store = new LazyPostgresStore(database.url, {});
      await store.migrate(Date.now());
      assert.deepEqual([...await store.queuePausedNames()], [], "loaded and answering");
      await store.close();
      for (
        const call of [() => store.queuePausedNames(), () => store.taskGet(1), () => store.taskPending(0)]
      ) {
        const result = call();
        assert.ok(result instanceof Promise, "a rejection, not a throw or a value");
        await assert.rejects(
          result,
          (error: Error) => error instanceof DatabaseError && /is closed/.test(error.message),
        );
      }
    } finally {
      await database.drop();
    }
  },
);
