/**
 * What the tests of the `prismq` commands share: test-only handlers, a fixture that runs commands against a
 * fresh database file, and the colour patterns of terminal output. The commands run as functions through
 * `cli()` (`../_cli.ts`); shared assertions live in `../_helpers.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as v from "valibot";
import { defineHandler, type HandlerDefinition, Queue, QueueDatabase } from "../../mod.ts";
import { handlers } from "../../handlers/mod.ts";
import { cli, type CliOptions, type Result } from "../_cli.ts";
import { deferred, makeTempDir } from "../_helpers.ts";
import { FILE_DATABASE, type ProcessDatabase } from "../_databases.ts";

/** A handler that always throws "kaboom". */
export const boom = defineHandler({
  type: "boom",
  schema: v.object({}),
  description: "Always throws.",
  handle() {
    throw new Error("kaboom");
  },
});

/** A handler that writes one log line with the word it is given. */
export const chatty = defineHandler({
  type: "chatty",
  schema: v.object({ word: v.string() }),
  description: "Writes one log line, reports its progress, and returns what it said.",
  async handle(task, ctx) {
    await ctx.log("info", `said ${task.payload.word}`, { length: task.payload.word.length });
    await ctx.progress({ words: 1 });
    return { said: task.payload.word };
  },
});

/** A noop whose payload may hold other fields, for payloads with nested objects: it replaces the linked one. */
export const looseNoop = defineHandler({
  type: "noop",
  schema: v.looseObject({ sleepMs: v.optional(v.number()) }),
  description: "Does nothing.",
  handle() {},
});

/** A handler that runs until the test calls `release`, or until its signal aborts: then it rejects so. */
export function heldHandler(): { definition: HandlerDefinition; release: () => void } {
  const gate = deferred();
  const definition = defineHandler({
    type: "held",
    schema: v.object({}),
    description: "Runs until the test lets it finish.",
    handle: (_task, ctx) =>
      new Promise<void>((resolve, reject) => {
        if (ctx.signal.aborted) return reject(ctx.signal.reason);
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
        void gate.promise.then(resolve);
      }),
  });
  return { definition, release: () => gate.resolve() };
}

/** The real linked handlers plus two of the tests' own. */
export const TEST_HANDLERS: readonly HandlerDefinition[] = [...handlers, boom, chatty];

/** The linked handlers with {@link looseNoop} in place of noop. */
export const LOOSE_HANDLERS: readonly HandlerDefinition[] = [
  ...handlers.filter((handler) => handler.type !== "noop"),
  looseNoop,
];

export interface Fixture {
  dir: string;
  /** The database's location: a file's path, or a server's URL. */
  dbPath: string;
  /** Runs a command against the fixture's database (`--db` appended). */
  q(argv: string[], options?: CliOptions): Promise<Result>;
  /** Runs a command and parses its standard output as JSON, failing unless it exits 0. */
  qJson<T = unknown>(argv: string[], options?: CliOptions): Promise<T>;
  /** Opens the database directly for checks and set-up. */
  inspect<T>(fn: (queue: Queue, db: QueueDatabase) => Promise<T>): Promise<T>;
}

/** Runs `fn` with a fresh database of the kind given (a file unless told), removed after. */
export async function withFixture(
  fn: (fx: Fixture) => Promise<void>,
  database: ProcessDatabase = FILE_DATABASE,
): Promise<void> {
  const { dir, remove } = makeTempDir("prismq-cli-");
  const { location: dbPath, drop } = await database.create(dir);
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
        await db.close();
      }
    },
  };
  try {
    await fn(fx);
  } finally {
    await drop();
    remove();
  }
}

/** A terminal colour (SGR) sequence, and all of them. */
// deno-lint-ignore no-control-regex
export const SGR = /\x1b\[[0-9;]*m/;
// deno-lint-ignore no-control-regex
export const ALL_SGR = /\x1b\[[0-9;]*m/g;
