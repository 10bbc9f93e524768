/**
 * `prismq`: the command line as one function of (argv, io), returning the exit code. The process, its
 * signals and its exit live in `scripts/prismq_process.ts`; everything here is testable in memory.
 *
 * @module
 */
import type { HandlerDefinition, ScheduleDefinition } from "../../mod.ts";
import { VERSION } from "../version.ts";
import { UsageError } from "./args.ts";
import { assertLinkedHandlers, type Command } from "./context.ts";
import { describeFailure, EXIT, exitCodeFor } from "./exit.ts";
import { enqueueCommand } from "./commands/enqueue.ts";
import { handlersCommand } from "./commands/handlers.ts";
import { demoCommand, migrateCommand } from "./commands/maintenance.ts";
import { queueCommand, queuesCommand } from "./commands/queues.ts";
import { runCommand } from "./commands/run.ts";
import { schedulesCommand } from "./commands/schedules.ts";
import { serveCommand } from "./commands/serve.ts";
import { statusCommand } from "./commands/status.ts";
import { cancelCommand, listCommand, purgeCommand, retryCommand, showCommand } from "./commands/tasks.ts";
import { workersCommand } from "./commands/workers.ts";
import type { CliIo } from "./io.ts";

export const COMMANDS: readonly Command[] = [
  runCommand,
  enqueueCommand,
  handlersCommand,
  statusCommand,
  listCommand,
  showCommand,
  retryCommand,
  cancelCommand,
  purgeCommand,
  workersCommand,
  schedulesCommand,
  queuesCommand,
  queueCommand,
  serveCommand,
  migrateCommand,
  demoCommand,
];

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `prismq ${VERSION}: a task queue with statically linked handlers, on an embedded SQLite file, libSQL or PostgreSQL

Usage: prismq <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}

Run 'prismq <command> --help' for a command's options. Every command takes --db <url> (default
$PRISMQ_DB_URL, else ./prismq.db) and creates and migrates the database when needed.
Exit codes: 0 success, 1 failure, 2 usage or validation error, 70 internal error (a bug in prismq).
PRISMQ_DEBUG=1 prints stack traces.
`;
}

/**
 * Runs one command line.
 *
 * @param argv the words after `prismq`
 * @param handlers the handlers this build links; nothing else is ever registered
 * @param schedules the schedules this build links, declared beside its handlers
 * @returns the exit code
 */
export async function main(
  argv: string[],
  io: CliIo,
  handlers: readonly HandlerDefinition[],
  schedules: readonly ScheduleDefinition[] = [],
): Promise<number> {
  const [name, ...rest] = argv;
  try {
    assertLinkedHandlers(handlers);
    if (name === undefined) {
      io.stderr.write(overview());
      return EXIT.usage;
    }
    if (name === "--help" || name === "-h" || name === "help") {
      const topic = name === "help" ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
      io.stdout.write(topic ? topic.help + "\n" : overview());
      return EXIT.ok;
    }
    if (name === "--version" || name === "-V" || name === "version") {
      io.stdout.write(`prismq ${VERSION}\n`);
      return EXIT.ok;
    }
    const command = COMMANDS.find((c) => c.name === name);
    if (!command) {
      throw new UsageError(
        `Unknown command '${name}'.`,
        `Commands: ${COMMANDS.map((c) => c.name).join(", ")}.`,
      );
    }
    // Every command takes --help, anywhere among its arguments.
    if (rest.includes("--help") || rest.includes("-h")) {
      io.stdout.write(command.help + "\n");
      return EXIT.ok;
    }
    return await command.run(rest, { io, handlers, schedules });
  } catch (error) {
    const code = exitCodeFor(error);
    const prefix = name && COMMANDS.some((c) => c.name === name) ? `prismq ${name}` : "prismq";
    io.stderr.write(describeFailure(prefix, error, code));
    if (io.env.PRISMQ_DEBUG === "1" && error instanceof Error && error.stack) {
      io.stderr.write(error.stack + "\n");
    }
    return code;
  }
}
