/**
 * `prismq migrate` and `prismq demo`.
 *
 * @module
 */
import { MIGRATIONS } from "../../store/sqlite/migrations.ts";
import { expectArguments, parseCommand } from "../args.ts";
import { type Command, COMMON_HELP, COMMON_OPTIONS, databaseLocation, openDatabase } from "../context.ts";
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
    const db = await openDatabase(values.db, io);
    db.close();
    const version = MIGRATIONS[MIGRATIONS.length - 1].version;
    if (values.json) {
      io.stdout.write(json({ database: databaseLocation(values.db, io), schemaVersion: version }));
    } else io.stdout.write(`Database ${databaseLocation(values.db, io)} is at schema version ${version}.\n`);
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
    const db = await openDatabase(values.db, io);
    try {
      io.stdout.write(`PrismQ demo on database '${databaseLocation(values.db, io)}'\n`);
      await runDemo(db, (line) => io.stdout.write(line + "\n"));
      return 0;
    } finally {
      db.close();
    }
  },
};
