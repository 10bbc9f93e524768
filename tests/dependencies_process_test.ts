/**
 * Dependencies with real worker processes: a fan-out of parts, a fan-in that adds up their results, a chain
 * after it, and a branch whose root fails, run by three worker processes at once on a SQLite file and on
 * PostgreSQL; and the README's fan-out/fan-in example, type-checked and run as written.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import process from "node:process";
import { Queue, QueueDatabase } from "../mod.ts";
import { PROCESS_DATABASES } from "./_databases.ts";
import { makeTempDir, within } from "./_helpers.ts";

const REPO = new URL("..", import.meta.url).pathname;
const WORKERS = 3;
const PARTS = 60;

/** A worker process of `tests/fixtures/fan_worker.ts` on `location`; `go()` lets it start. */
function startWorker(location: string) {
  const fixture = new URL("./fixtures/fan_worker.ts", import.meta.url).pathname;
  const child = spawn(process.execPath, ["run", "-A", fixture, location], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (chunk) => (out += chunk));
  child.stderr!.on("data", (chunk) => (err += chunk));
  const exit = new Promise<number | null>((resolve) => child.on("exit", resolve));
  return {
    child,
    exit,
    output: () => ({ out, err }),
    async ready() {
      while (!out.includes("ready")) {
        if (child.exitCode !== null) throw new Error(`a worker exited before it was ready: ${err}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    go: () => child.stdin!.write("go\n"),
  };
}

describe("dependencies across worker processes", () => {
  for (const database of PROCESS_DATABASES) {
    test(
      `${WORKERS} workers run a fan-out, its fan-in, a chain after it and a failed branch on ${database.name}`,
      {
        skip: database.skip,
      },
      async () => {
        const { dir, remove } = makeTempDir();
        const { location, drop } = await database.create(dir);
        const db = new QueueDatabase(location);
        const workers: ReturnType<typeof startWorker>[] = [];
        try {
          await db.initializeSchema();
          const queue = new Queue(db);
          const parts = await queue.enqueueMany(
            Array.from({ length: PARTS }, (_, n) => ({ type: "part", payload: { n } })),
          );
          const ids = parts.map((part) => part.id);
          const sum = await queue.enqueue("sum", { parts: ids }, { dependsOn: ids });
          const next = await queue.enqueue("part", { n: 1000 }, { dependsOn: [sum.id] });
          const last = await queue.enqueue("part", { n: 2000 }, { dependsOn: [next.id] });
          const boom = await queue.enqueue("boom");
          const afterBoom = await queue.enqueue("part", { n: 3000 }, { dependsOn: [boom.id, ids[0]!] });
          const farAfterBoom = await queue.enqueue("part", { n: 4000 }, { dependsOn: [afterBoom.id] });
          assert.deepEqual(
            [sum, next, last, afterBoom, farAfterBoom].map((task) => task.status),
            ["waiting", "waiting", "waiting", "waiting", "waiting"],
          );
          assert.equal((await queue.stats()).counts.waiting, 5);

          for (let i = 0; i < WORKERS; i++) workers.push(startWorker(location));
          for (const worker of workers) await within(60_000, "a worker to start", worker.ready());
          for (const worker of workers) worker.go();
          const codes = await within(
            180_000,
            "the workers to finish",
            Promise.all(workers.map((w) => w.exit)),
          );
          assert.deepEqual(codes, workers.map(() => 0), workers.map((w) => w.output().err).join("\n"));

          const done = (await queue.getMany(ids)).map((task) => task!);
          for (const part of done) {
            assert.deepEqual([part.status, part.attempts], ["completed", 1], `part ${part.id}`);
          }
          const [summed, nextDone, lastDone, boomed, cancelled, farCancelled] = await queue.getMany([
            sum.id,
            next.id,
            last.id,
            boom.id,
            afterBoom.id,
            farAfterBoom.id,
          ]);
          assert.deepEqual([summed!.status, summed!.attempts], ["completed", 1], summed!.errorMessage ?? "");
          assert.equal(
            summed!.result,
            PARTS * (PARTS - 1),
            "twice the sum of 0..59, from every part's result",
          );
          // Each handler checked, as it started, that every task it depends on had completed (else it failed
          // for good): times written by different processes' clocks cannot show the order.
          assert.deepEqual([nextDone!.status, lastDone!.status], ["completed", "completed"]);
          assert.equal(boomed!.status, "failed");
          assert.deepEqual([cancelled!.status, cancelled!.errorMessage], [
            "cancelled",
            `Dependency task ${boom.id} failed: boom`,
          ]);
          assert.deepEqual([farCancelled!.status, farCancelled!.errorMessage], [
            "cancelled",
            `Dependency task ${afterBoom.id} was cancelled because task ${boom.id} failed: boom`,
          ]);
          assert.equal((await queue.stats()).counts.waiting, 0);
        } finally {
          for (const worker of workers) if (worker.child.exitCode === null) worker.child.kill();
          await db.close();
          await drop();
          remove();
        }
      },
    );
  }

  test("the README's fan-out/fan-in example type-checks and runs as written", async () => {
    // Inside the repository, so that its bare imports (valibot) resolve as they do for its own files;
    // .scratch/ is ignored by git.
    mkdirSync(join(REPO, ".scratch"), { recursive: true });
    const dir = mkdtempSync(join(REPO, ".scratch", "dependencies-example-"));
    try {
      const readme = readFileSync(join(REPO, "README.md"), "utf8");
      const section = readme.slice(readme.indexOf("### Dependencies"));
      const example = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
      assert.ok(example, "the README's Dependencies section has a ts block");
      assert.match(example, /new QueueDatabase\("app\.db"\)/);
      const file = join(dir, "example.ts");
      writeFileSync(
        file,
        example.replaceAll('"prismq"', `"${relative(dir, REPO)}/mod.ts"`)
          .replace('"app.db"', JSON.stringify(join(dir, "app.db"))),
      );
      const output = await within(120_000, "the example", run(["run", "-A", "--check", file]));
      assert.equal(output.code, 0, output.err);
      assert.equal(output.out.trim(), "{ words: 6 }");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Runs Deno with `args`; its exit code and output. */
function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (chunk) => (out += chunk));
  child.stderr!.on("data", (chunk) => (err += chunk));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, out, err })));
}
