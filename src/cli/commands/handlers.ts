/**
 * `prismq handlers`: the handlers linked into this build.
 *
 * @module
 */
import { expectArguments, parseCommand } from "../args.ts";
import { type Command, COMMON_HELP, COMMON_OPTIONS } from "../context.ts";
import { json, styleFor, table } from "../format.ts";
import { payloadFields } from "../schema_fields.ts";

const HELP = `Usage: prismq handlers [--json]

Lists the handlers linked into this build: the only task types this binary runs and accepts.
${COMMON_HELP}`;

export const handlersCommand: Command = {
  name: "handlers",
  summary: "List the linked handlers and their payloads",
  help: HELP,
  run(argv, { io, handlers }) {
    const { values, positionals } = parseCommand("handlers", argv, COMMON_OPTIONS);
    expectArguments(positionals, 0);
    const described = [...handlers].sort((a, b) => a.type.localeCompare(b.type)).map((handler) => ({
      type: handler.type,
      version: handler.version,
      description: handler.description,
      timeoutMs: handler.timeoutMs ?? null,
      fields: payloadFields(handler.schema),
    }));
    if (values.json) {
      io.stdout.write(json(described));
      return Promise.resolve(0);
    }
    const style = styleFor(io.stdout, io);
    const rows = described.map((h) => [
      h.type,
      h.version,
      h.description,
      h.fields.map((f) => `${f.name}${f.required ? "" : "?"}: ${f.type}`).join(", ") || "-",
    ]);
    io.stdout.write(table(["TYPE", "VERSION", "DESCRIPTION", "PAYLOAD"], rows, style));
    return Promise.resolve(0);
  },
};
