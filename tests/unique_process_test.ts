/**
 * `unique` keys with real processes racing: four processes (tests/fixtures/enqueue_unique.ts) enqueue
 * tasks with one key at once, on a database file and on a PostgreSQL server. Each round creates exactly
 * one task, and every other enqueue names it; a finished task frees a key held while active, and a window
 * over lets exactly one new task in.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Queue, QueueDatabase, type UniqueOptions } from "../mod.ts";
import { makeTempDir, waitFor } from "./_helpers.ts";
import { PROCESS_DATABASES } from "./_databases.ts";

const fixture = new URL("./fixtures/enqueue_unique.ts", import.meta.url).pathname;
const PROCESSES = 4;
const PER_PROCESS = 6;

interface Outcome {
  id: number;
  created: boolean;
  matchedKey?: string;
}

/** One race: the processes start, wait for the go file, and enqueue; returns every outcome they printed. */
async function race(location: string, dir: string, round: string, unique: UniqueOptions): Promise<Outcome[]> {
  const go = join(dir, `go-${round}`);
  const children = Array.from({ length: PROCESSES }, () => {
    const child = spawn(
      process.execPath,
      ["run", "-A", fixture, location, go, JSON.stringify(unique), String(PER_PROCESS)],
      { stdio: "pipe" },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const code = new Promise<number | null>((resolve) => child.on("exit", resolve));
    return { stdout: () => stdout, stderr: () => stderr, code };
  });
  await waitFor(
    () => children.every((child) => child.stdout().startsWith("ready\n")),
    60_000,
    "every process to connect",
  );
  writeFileSync(go, "");
  const codes = await Promise.all(children.map((child) => child.code));
  children.forEach((child, i) => assert.equal(codes[i], 0, `process ${i}: ${child.stderr()}`));
  return children.flatMap((child) =>
    child.stdout().split("\n").slice(1).filter(Boolean).map((line) => JSON.parse(line) as Outcome)
  );
}

/** Asserts that exactly one of `outcomes` created a task, and that the others name it; returns its id. */
function oneCreated(outcomes: readonly Outcome[], what: string): number {
  assert.equal(outcomes.length, PROCESSES * PER_PROCESS, `${what}: every enqueue answered`);
  const created = outcomes.filter((outcome) => outcome.created);
  assert.equal(created.length, 1, `${what}: exactly one created, of ${outcomes.length}`);
  const id = created[0]!.id;
  for (const outcome of outcomes.filter((outcome) => !outcome.created)) {
    assert.deepEqual(outcome, { id, created: false, matchedKey: "unique" }, what);
  }
  return id;
}

for (const database of PROCESS_DATABASES) {
  test(
    `processes racing on one unique key create exactly one task per scope and round, on ${database.name}`,
    {
      skip: database.skip,
    },
    async () => {
      const { dir, remove } = makeTempDir();
      const { location, drop } = await database.create(dir);
      const db = new QueueDatabase(location);
      try {
        await db.initializeSchema();
        const queue = new Queue(db);
        const active = { key: "sync:42", while: "active" } as const;
        const first = oneCreated(await race(location, dir, "active-1", active), "while active");
        await queue.cancel(first);
        const second = oneCreated(
          await race(location, dir, "active-2", active),
          "once the first was cancelled",
        );
        assert.notEqual(second, first);

        const window = { key: "digest:7", forMs: 1000 } as const;
        const opened = oneCreated(await race(location, dir, "window-1", window), "in a window");
        const holder = (await queue.get(opened))!;
        // Past the window on this host's clock, which the processes share.
        await waitFor(() => Date.now() > holder.createdAt + 1000, 10_000, "the window to pass");
        const next = oneCreated(await race(location, dir, "window-2", window), "after the window");
        assert.notEqual(next, opened);
        const races = (await queue.list({ type: "race", limit: 1000 })).map((task) => task.id).sort((a, b) =>
          a - b
        );
        assert.deepEqual(
          races,
          [first, second, opened, next].sort((a, b) => a - b),
          "no other task was stored",
        );
      } finally {
        await db.close();
        await drop();
        remove();
      }
    },
  );
}
