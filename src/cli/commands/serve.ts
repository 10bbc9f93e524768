/**
 * `prismq serve`: the HTTP API (and the dashboard, when built in) on the database, until SIGINT or SIGTERM.
 *
 * @module
 */
import { expectArguments, parseCommand } from "../args.ts";
import { type Command, COMMON_HELP, COMMON_OPTIONS, shownLocation, withDatabase } from "../context.ts";
import type { Signal } from "../io.ts";
import { DEFAULT_LISTEN } from "../listen_address.ts";
import { SERVE_HELP, serveSettings, startHttpServer } from "../serve_http.ts";

const HELP = `Usage: prismq serve [--listen ${DEFAULT_LISTEN}] [--max-body <bytes>] [options]

Serves the HTTP API over the database: enqueue (checked as 'prismq enqueue' checks), list and filter
tasks, cancel, retry, delete, purge, statistics, workers, logs, queues (pause, resume, limits) and
schedules. It runs no handler: run workers with 'prismq run' (or serve from a worker with
'prismq run --serve <address>'). SIGINT or SIGTERM stops it: requests under way finish first.

Options:
  --listen <host:port>  Address to listen on (default ${DEFAULT_LISTEN}; port 0: any free port)
${SERVE_HELP}
${COMMON_HELP}  (--json prints one JSON event per line)`;

export const serveCommand: Command = {
  name: "serve",
  summary: "Serve the HTTP API",
  help: HELP,
  async run(argv, { io, handlers, schedules }) {
    const { values, positionals } = parseCommand("serve", argv, {
      ...COMMON_OPTIONS,
      listen: { type: "string" },
      "max-body": { type: "string" },
    });
    expectArguments(positionals, 0);
    // Checked before the database is opened: a refused address creates nothing.
    const settings = serveSettings("--listen", values.listen ?? DEFAULT_LISTEN, values["max-body"], io.env);
    const note = (event: string, message: string, fields: Record<string, unknown> = {}) =>
      io.stdout.write(
        values.json
          ? JSON.stringify({ at: new Date().toISOString(), event, ...fields, message }) + "\n"
          : `${message}\n`,
      );
    return await withDatabase(io, values, async (db) => {
      let unsubscribe = () => {};
      const stopped = new Promise<Signal>((resolve) => (unsubscribe = io.onSignal(resolve)));
      try {
        const { url, listener, describe } = await startHttpServer(io, db, settings, handlers, schedules);
        note("listening", `Serving ${shownLocation(values.db, io)}: ${describe}.`, { url });
        const signal = await stopped;
        note("stopping", `${signal}: stopping; requests under way finish first.`);
        await listener.close();
        note("stopped", "Server stopped.");
        return 0;
      } finally {
        unsubscribe();
      }
    });
  },
};
