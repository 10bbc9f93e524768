/**
 * `prismq enqueue`: one task from arguments, or many from NDJSON (see `enqueue_ndjson.ts`).
 *
 * @module
 */
import { isDeepStrictEqual } from "node:util";
import {
  DEFAULT_MAX_PAYLOAD_BYTES,
  type EnqueuedTask,
  type EnqueueOptions,
  type Task,
} from "../../../mod.ts";
import { queueName } from "../../queue_name.ts";
import { parseCommand, parseDuration, parseInteger, parseList, parseTime, UsageError } from "../args.ts";
import { type Command, COMMON_HELP, COMMON_OPTIONS, linkedRegistry, withQueue } from "../context.ts";
import { formatDuration, formatTime, json, styleFor } from "../format.ts";
import { inexactIntegerProblem } from "../../exact_numbers.ts";
import { decodeUtf8 } from "../io.ts";
import { BATCH_TEXT, enqueueNdjson, LINE_ROOM } from "./enqueue_ndjson.ts";
import { RETRY_FLAGS, RETRY_HELP, RETRY_OPTIONS, retryFromFlags } from "./enqueue_retry.ts";

const HELP = `Usage:
  prismq enqueue <type> [<payload-json> | --payload-file <file> | -] [options]
  prismq enqueue --ndjson <file | ->

Adds a task for one of the linked handlers (see 'prismq handlers'). The payload is checked against the
handler's schema before anything is written. Without a payload, the payload is {}. --json prints the
task with "created": true, or false when another task held its key: then that task, with "matchedKey"
("idempotencyKey" or "unique").

Options:
  --payload-file <file>  Read the payload JSON from a file ('-' or a lone '-' argument: standard input)
  --priority <n>         Lower numbers run first, negative ones too: --priority -1 (default 100)
  --delay <duration>     Run no sooner than this from now: 30s, 5m, 2h, 1d
  --run-at <time>        Run no sooner than this ISO-8601 time with a zone: 2030-01-31T09:00:00Z
  --max-attempts <n>     Attempts before the task fails for good (default 5)
${RETRY_HELP}
  --key <key>            Idempotency key: enqueueing the same key again adds nothing and prints the
                         existing task (--json: "created": false); a warning on stderr says when its
                         type or payload differs from the one given (the exit code stays 0)
  --unique <key>         A key no other task may hold while this one is waiting, queued or running: while one
                         does, nothing is added and that task is printed (--json: "created": false,
                         "matchedKey": "unique"). Keys are shared by every type and queue.
  --unique-for <duration>  With --unique: hold the key for this long from the task's creation instead,
                         whatever becomes of the task: at most one task per key per 10m, say
  --timeout <duration>   Time limit per attempt (default: the handler's, or none)
  --queue <name>         The named queue (default: the handler's, else 'default'); workers serving it
                         run it, under its limits (see 'prismq queue --help')
  --depends-on <ids>     Run only after these tasks (comma-separated ids) have all completed; it waits
                         until then (status 'waiting'), and is cancelled if one fails or is cancelled
                         Payloads over $PRISMQ_MAX_PAYLOAD_BYTES (default 1048576) are refused.
  --ndjson <file | ->    Bulk: one JSON object per line, {"type", "payload", "priority"?, "delayMs"?,
                         "runAt"?, "maxAttempts"?, "retry"?, "idempotencyKey"?, "timeoutMs"?, "queue"?,
                         "unique"?} ("retry": {"initialDelayMs"?, "multiplier"?, "maxDelayMs"?, "jitter"?};
                         "unique": {"key", "while": "active"} or {"key", "forMs"}). Good lines go in,
                         in transactions of ${BATCH_TEXT}; bad lines are reported with their numbers and
                         nothing from them is written (exit code 2 when there were any). SIGINT or
                         SIGTERM stops it once the batch being written is in; it says which lines were
                         written and where to resume (exit code 1).
${COMMON_HELP}

Examples:
  prismq enqueue send_email '{"to": "ada@example.com", "subject": "Hi", "body": "Hello"}'
  prismq enqueue noop --delay 10m --key nightly-check
  prismq enqueue noop --depends-on 12,13
  prismq enqueue send_email '{"to": "ada@example.com"}' --max-attempts 10 --retry-delay 30s --retry-max-delay 1h
  prismq enqueue sync_account '{"account": 42}' --unique sync:42
  prismq enqueue send_digest '{"user": 7}' --unique digest:7 --unique-for 10m
  prismq enqueue --ndjson tasks.ndjson`;

export const enqueueCommand: Command = {
  name: "enqueue",
  summary: "Add a task, or many from NDJSON",
  help: HELP,
  async run(argv, { io, handlers }) {
    const { values, positionals } = parseCommand("enqueue", argv, {
      ...COMMON_OPTIONS,
      "payload-file": { type: "string" },
      priority: { type: "string" },
      delay: { type: "string" },
      "run-at": { type: "string" },
      "max-attempts": { type: "string" },
      ...RETRY_OPTIONS,
      key: { type: "string" },
      unique: { type: "string" },
      "unique-for": { type: "string" },
      timeout: { type: "string" },
      queue: { type: "string" },
      "depends-on": { type: "string" },
      ndjson: { type: "string" },
    });
    // Checked before anything is opened: a bad limit is a usage error that creates no database.
    const queueOptions = { registry: linkedRegistry(handlers), maxPayloadBytes: maxPayloadBytes(io.env) };

    if (values.ndjson !== undefined) {
      const single = [
        "payload-file",
        "priority",
        "delay",
        "run-at",
        "max-attempts",
        ...RETRY_FLAGS,
        "key",
        "unique",
        "unique-for",
        "timeout",
        "queue",
        "depends-on",
      ] as const;
      const clash = single.find((name) => values[name] !== undefined);
      if (positionals.length > 0 || clash) {
        throw new UsageError(
          `--ndjson takes every task from the file; remove ${clash ? `--${clash}` : `'${positionals[0]}'`}.`,
        );
      }
      const ndjson = values.ndjson;
      const maxLineBytes = (queueOptions.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES) + LINE_ROOM;
      return await withQueue(
        io,
        values,
        (queue) => enqueueNdjson(ndjson, queue, values.json, io, maxLineBytes),
        queueOptions,
      );
    }

    const [type, payloadArg, ...extra] = positionals;
    if (type === undefined) {
      throw new UsageError("Missing task type.", `Linked types: ${handlers.map((h) => h.type).join(", ")}.`);
    }
    if (extra.length > 0) {
      throw new UsageError(
        `Unexpected argument '${extra[0]}'.`,
        'Quote the payload so that the shell passes it as one argument: \'{"key": "value"}\'.',
      );
    }
    if (payloadArg !== undefined && values["payload-file"] !== undefined) {
      throw new UsageError("Give the payload as an argument or with --payload-file, not both.");
    }
    const options = singleTaskOptions(values);
    const source = values["payload-file"] ?? (payloadArg === "-" ? "-" : undefined);
    const payloadText = source === undefined
      ? payloadArg
      : decodePayload(source === "-" ? await io.readStdin() : await readPayloadFile(source, io), source);
    const payload = payloadText === undefined ? {} : parsePayloadJson(payloadText, source);

    return await withQueue(io, values, async (queue) => {
      const task = await queue.enqueue(type, payload, options);
      // created and matchedKey are not enumerable: named here, after the task's own fields.
      if (values.json) io.stdout.write(json({ ...task, created: task.created, matchedKey: task.matchedKey }));
      else io.stdout.write(describeEnqueued(task, styleFor(io.stdout, io)) + "\n");
      // A unique key matched by another payload is what it is for (one pending sync, whatever its payload).
      const mismatch = task.matchedKey === "idempotencyKey" ? keyMismatch(task, type, payload) : undefined;
      if (mismatch) io.stderr.write(`prismq enqueue: warning: ${mismatch}\n`);
      return 0;
    }, queueOptions);
  },
};

/** The payload size limit: `PRISMQ_MAX_PAYLOAD_BYTES`, else the queue's default of 1 MiB. */
function maxPayloadBytes(env: Record<string, string | undefined>): number | undefined {
  const text = env.PRISMQ_MAX_PAYLOAD_BYTES;
  return text === undefined || text === "" ? undefined : parseInteger("PRISMQ_MAX_PAYLOAD_BYTES", text, 1);
}

function singleTaskOptions(values: Record<string, string | boolean | undefined>): EnqueueOptions {
  const text = (name: string) => values[name] as string | undefined;
  if (text("delay") !== undefined && text("run-at") !== undefined) {
    throw new UsageError("Give --delay or --run-at, not both.");
  }
  const options: EnqueueOptions = {};
  if (text("priority") !== undefined) {
    options.priority = parseInteger("--priority", text("priority")!, -1_000_000_000, 1_000_000_000);
  }
  if (text("delay") !== undefined) options.delayMs = parseDuration("--delay", text("delay")!);
  if (text("run-at") !== undefined) options.runAt = parseTime("--run-at", text("run-at")!);
  if (text("max-attempts") !== undefined) {
    options.maxAttempts = parseInteger("--max-attempts", text("max-attempts")!, 1, 1000);
  }
  const retry = retryFromFlags(values);
  if (retry !== undefined) options.retry = retry;
  if (text("key") !== undefined) {
    if (text("key") === "") throw new UsageError("The idempotency key given with --key is empty.");
    options.idempotencyKey = text("key");
  }
  if (text("unique-for") !== undefined && text("unique") === undefined) {
    throw new UsageError("--unique-for says how long a --unique key is held: give --unique <key> too.");
  }
  if (text("unique") !== undefined) {
    if (text("unique") === "") throw new UsageError("The key given with --unique is empty.");
    const forMs = text("unique-for") === undefined
      ? undefined
      : parseDuration("--unique-for", text("unique-for")!);
    if (forMs === 0) throw new UsageError("--unique-for must be longer than 0: 30s, 10m, 1h.");
    options.unique = forMs === undefined
      ? { key: text("unique")!, while: "active" }
      : { key: text("unique")!, forMs };
  }
  if (text("timeout") !== undefined) {
    options.timeoutMs = parseDuration("--timeout", text("timeout")!);
    if (options.timeoutMs === 0) throw new UsageError("--timeout must be longer than 0.");
  }
  if (text("queue") !== undefined) options.queue = queueName(text("queue"), "--queue");
  if (text("depends-on") !== undefined) {
    options.dependsOn = parseList("--depends-on", text("depends-on")!).map((id) =>
      parseInteger("a task id in --depends-on", id, 1)
    );
  }
  return options;
}

async function readPayloadFile(path: string, io: { readFile(path: string): Promise<Uint8Array> }) {
  try {
    return await io.readFile(path);
  } catch (error) {
    throw new UsageError(`Cannot read the payload file '${path}': ${(error as Error).message}`);
  }
}

function decodePayload(bytes: Uint8Array, source: string): string {
  const text = decodeUtf8(bytes);
  if (text === undefined) {
    const where = source === "-" ? "on standard input" : `in '${source}'`;
    throw new UsageError(`The payload ${where} is not valid UTF-8.`, "Save it as UTF-8 and try again.");
  }
  return text;
}

function parsePayloadJson(text: string, source: string | undefined): unknown {
  const where = source === undefined
    ? "The payload"
    : source === "-"
    ? "The payload on standard input"
    : `The payload in '${source}'`;
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `${where} is not valid JSON: ${(error as Error).message}.`,
      source === undefined ? `Quote it for the shell, like '{"to": "ada@example.com"}'.` : undefined,
    );
  }
  const inexact = inexactIntegerProblem(text);
  if (inexact) throw new UsageError(`${where} cannot be taken exactly: ${inexact}.`);
  return payload;
}

/**
 * What differs between the task an idempotency key matched and the one asked for, when the type or payload
 * does: the caller likely meant another task, and it was not added.
 */
function keyMismatch(existing: Task, type: string, payload: unknown): string | undefined {
  // Compared as stored: through JSON, where key order does not matter and -0 is 0.
  const given = JSON.parse(JSON.stringify(payload));
  const differs = [
    existing.type === type ? undefined : `its type is '${existing.type}', not '${type}'`,
    isDeepStrictEqual(existing.payload, given) ? undefined : "its payload differs from the one given",
  ].filter((text) => text !== undefined);
  if (differs.length === 0) return undefined;
  return `the key '${existing.idempotencyKey}' matched task ${existing.id}, but ${differs.join(" and ")}. ` +
    `Task ${existing.id} is unchanged and nothing was added; use another --key for a new task.`;
}

function describeEnqueued(task: EnqueuedTask, style: ReturnType<typeof styleFor>): string {
  if (task.matchedKey === "unique") {
    const scope = task.uniqueForMs === null
      ? "while it is queued or running"
      : `until ${formatTime(task.createdAt + task.uniqueForMs)}`;
    return `Task ${task.id} (${task.type}) holds the unique key '${task.uniqueKey}' ${scope}; it is ` +
      `${task.status}. Nothing was added.`;
  }
  if (!task.created) {
    return `Task ${task.id} (${task.type}) already exists with key '${task.idempotencyKey}'; it is ` +
      `${task.status}. Nothing was added.`;
  }
  if (task.status === "waiting") {
    return `Enqueued task ${style.bold(String(task.id))} (${task.type}), waiting for its dependencies.`;
  }
  if (task.status === "cancelled") {
    return `Enqueued task ${
      style.bold(String(task.id))
    } (${task.type}), cancelled at once: ${task.errorMessage}.`;
  }
  const wait = task.runAfter - Date.now();
  const when = wait > 500
    ? `runnable at ${formatTime(task.runAfter)} (in ${formatDuration(wait)})`
    : "runnable now";
  return `Enqueued task ${style.bold(String(task.id))} (${task.type}), ${when}.`;
}
