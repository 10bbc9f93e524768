/**
 * `prismq migrate` and `prismq demo`.
 *
 * @module
 */
import { schemaVersionFor } from "../../store/registry.ts";
import { expectArguments, parseCommand } from "../args.ts";
import {
  type Command,
  COMMON_HELP,
  COMMON_OPTIONS,
  databaseLocation,
  shownLocation,
  withDatabase,
} from "../context.ts";
import { runDemo } from "../demo.ts";
import { json } from "../format.ts";

const MIGRATE_HELP = `Usage: prismq migrate [--json]

Creates the database or brings its schema up to date. Every command does this when needed; this one
does only that.
${COMMON_HELP}`;

export const migrateCommand: Command = {
  name: "migrate",
  summary: "Create or upgrade the database schema",
  help: MIGRATE_HELP,
  async run(argv, { io }) {
    const { values, positionals } = parseCommand("migrate", argv, COMMON_OPTIONS);
    expectArguments(positionals, 0);
    // Opening the database migrates it: nothing more to do.
    await withDatabase(io, values, () => Promise.resolve());
    const version = schemaVersionFor(databaseLocation(values.db, io));
    const database = shownLocation(values.db, io);
    if (values.json) io.stdout.write(json({ database, schemaVersion: version }));
    else io.stdout.write(`Database ${database} is at schema version ${version}.\n`);
    return 0;
  },
};

const DEMO_HELP = `Usage: prismq demo [--db <url>]

Runs the original design's demo against the database: handler registration, a worker, the global
registry, a handler override, and the error for an unregistered type. It uses task types of its own
(demo_*) and leaves other tasks alone.
${COMMON_HELP}`;

export const demoCommand: Command = {
  name: "demo",
  summary: "Run the registry demo",
  help: DEMO_HELP,
  async run(argv, { io }) {
    const { values, positionals } = parseCommand("demo", argv, COMMON_OPTIONS);
    expectArguments(positionals, 0);
    await withDatabase(io, values, async (db) => {
      io.stdout.write(`PrismQ demo on database '${shownLocation(values.db, io)}'\n`);
      await runDemo(db, (line) => io.stdout.write(line + "\n"));
    });
    return 0;
  },
};
