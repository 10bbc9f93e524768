/**
 * `prismq enqueue`: one task from arguments, or many from NDJSON in batched transactions.
 *
 * @module
 */
import * as v from "valibot";
import {
  DatabaseError,
  DEFAULT_MAX_PAYLOAD_BYTES,
  type EnqueueItem,
  type EnqueueOptions,
  Queue,
  type Task,
} from "../../../mod.ts";
import { parseCommand, parseDuration, parseInteger, parseTime, UsageError } from "../args.ts";
import { type Command, COMMON_HELP, COMMON_OPTIONS, linkedRegistry, openDatabase } from "../context.ts";
import { count, formatDuration, formatTime, json, styleFor } from "../format.ts";
import { inexactIntegerProblem } from "../exact_numbers.ts";
import { decodeUtf8 } from "../io.ts";
import { bar, StatusLine } from "../progress.ts";

/** NDJSON lines are written in transactions of this many tasks, or of this many bytes of lines if fewer. */
const BATCH_SIZE = 10_000;
const BATCH_BYTES = 16 * 1024 * 1024;
const BATCH_TEXT = count(BATCH_SIZE);

const HELP = `Usage:
  prismq enqueue <type> [<payload-json> | --payload-file <file> | -] [options]
  prismq enqueue --ndjson <file | ->

Adds a task for one of the linked handlers (see 'prismq handlers'). The payload is checked against the
handler's schema before anything is written. Without a payload, the payload is {}.

Options:
  --payload-file <file>  Read the payload JSON from a file ('-' or a lone '-' argument: standard input)
  --priority <n>         Lower numbers run first (default 100)
  --delay <duration>     Run no sooner than this from now: 30s, 5m, 2h, 1d
  --run-at <time>        Run no sooner than this ISO-8601 time with a zone: 2030-01-31T09:00:00Z
  --max-attempts <n>     Attempts before the task fails for good (default 5)
  --key <key>            Idempotency key: enqueueing the same key again returns the existing task
  --timeout <duration>   Time limit per attempt (default: the handler's, or none)
                         Payloads over $PRISMQ_MAX_PAYLOAD_BYTES (default 1048576) are refused.
  --ndjson <file | ->    Bulk: one JSON object per line, {"type", "payload", "priority"?, "delayMs"?,
                         "runAt"?, "maxAttempts"?, "idempotencyKey"?, "timeoutMs"?}. Good lines go in,
                         in transactions of ${BATCH_TEXT}; bad lines are reported with their numbers and
                         nothing from them is written (exit code 2 when there were any).
${COMMON_HELP}

Examples:
  prismq enqueue send_email '{"to": "ada@example.com", "subject": "Hi", "body": "Hello"}'
  prismq enqueue noop --delay 10m --key nightly-check
  prismq enqueue --ndjson tasks.ndjson`;

const MAX_REPORTED_LINES = 1000;
/** Room on an NDJSON line for the fields other than the payload (type, key, times), beyond the payload limit. */
const LINE_ROOM = 64 * 1024;

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
      key: { type: "string" },
      timeout: { type: "string" },
      ndjson: { type: "string" },
    });
    const registry = linkedRegistry(handlers);

    if (values.ndjson !== undefined) {
      const single = [
        "payload-file",
        "priority",
        "delay",
        "run-at",
        "max-attempts",
        "key",
        "timeout",
      ] as const;
      const clash = single.find((name) => values[name] !== undefined);
      if (positionals.length > 0 || clash) {
        throw new UsageError(
          `--ndjson takes every task from the file; remove ${clash ? `--${clash}` : `'${positionals[0]}'`}.`,
        );
      }
      const db = await openDatabase(values.db, io);
      try {
        const limit = maxPayloadBytes(io.env);
        const queue = new Queue(db, { registry, maxPayloadBytes: limit });
        return await enqueueNdjson(
          values.ndjson,
          queue,
          values.json,
          io,
          (limit ?? DEFAULT_MAX_PAYLOAD_BYTES) + LINE_ROOM,
        );
      } finally {
        db.close();
      }
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

    const db = await openDatabase(values.db, io);
    try {
      const queue = new Queue(db, { registry, maxPayloadBytes: maxPayloadBytes(io.env) });
      const [{ task, created }] = await queue.enqueueManyDetailed([{ ...options, type, payload }]);
      if (values.json) io.stdout.write(json(task));
      else io.stdout.write(describeEnqueued(task, created, styleFor(io.stdout, io)) + "\n");
      return 0;
    } finally {
      db.close();
    }
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
  if (text("key") !== undefined) {
    if (text("key") === "") throw new UsageError("The idempotency key given with --key is empty.");
    options.idempotencyKey = text("key");
  }
  if (text("timeout") !== undefined) {
    options.timeoutMs = parseDuration("--timeout", text("timeout")!);
    if (options.timeoutMs === 0) throw new UsageError("--timeout must be longer than 0.");
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

function describeEnqueued(task: Task, created: boolean, style: ReturnType<typeof styleFor>): string {
  if (!created) {
    return `Task ${task.id} (${task.type}) already exists with key '${task.idempotencyKey}'; it is ` +
      `${task.status}. Nothing was added.`;
  }
  const wait = task.runAfter - Date.now();
  const when = wait > 500
    ? `runnable at ${formatTime(task.runAfter)} (in ${formatDuration(wait)})`
    : "runnable now";
  return `Enqueued task ${style.bold(String(task.id))} (${task.type}), ${when}.`;
}

/** What one NDJSON line may hold. Strict, so that a misspelt field is reported instead of ignored. */
const NdjsonLine = v.strictObject({
  type: v.string(),
  payload: v.optional(v.unknown()),
  priority: v.optional(v.number()),
  delayMs: v.optional(v.number()),
  runAt: v.optional(v.union([v.string(), v.number()])),
  maxAttempts: v.optional(v.number()),
  idempotencyKey: v.optional(v.string()),
  timeoutMs: v.optional(v.number()),
});

interface BadLine {
  line: number;
  error: string;
}

async function enqueueNdjson(
  source: string,
  queue: Queue,
  asJson: boolean,
  io: Parameters<Command["run"]>[1]["io"],
  maxLineBytes: number,
): Promise<number> {
  const totalBytes = source === "-" ? undefined : io.fileSize(source);
  if (source !== "-" && !io.exists(source)) {
    throw new UsageError(`The NDJSON file '${source}' does not exist.`);
  }
  if (source !== "-" && io.isFolder(source)) {
    throw new UsageError(
      `'${source}' is a folder, not an NDJSON file.`,
      "Give the path of a file, or - for standard input.",
    );
  }
  const progress = io.stderr.isTTY && !asJson ? new StatusLine(io.stderr) : undefined;
  const invalid: BadLine[] = [];
  let lineNumber = 0;
  let bytes = 0;
  let enqueued = 0;
  let existing = 0;
  let batch: EnqueueItem[] = [];
  /** The line each task of the batch came from. */
  let batchLines: number[] = [];
  let batchBytes = 0;

  // A batch's bad lines are reported together once it is written, in line order: lines the queue refuses
  // are only found then, after bad JSON further down.
  let batchBad: BadLine[] = [];
  const report = (bad: BadLine) => batchBad.push(bad);
  const reportBatch = () => {
    for (const bad of batchBad.sort((a, b) => a.line - b.line)) {
      invalid.push(bad);
      if (!asJson && invalid.length <= MAX_REPORTED_LINES) {
        const line = `line ${bad.line}: ${bad.error}`;
        if (progress) progress.print(line);
        else io.stderr.write(line + "\n");
      }
    }
    batchBad = [];
  };
  const write = async (): Promise<{ created: boolean }[]> => {
    try {
      // Each task is validated here, once; nearly every batch is all valid and goes in as it is.
      return await queue.enqueueManyIds(batch);
    } catch (error) {
      // Nothing of the batch was written: find its bad lines, report them, and write the rest.
      const valid: EnqueueItem[] = [];
      for (const [i, task] of batch.entries()) {
        const problem = await validationError(queue, task);
        if (problem === undefined) valid.push(task);
        else report({ line: batchLines[i], error: problem });
      }
      // Every task valid: the failure was the database's, not a line's.
      if (valid.length === batch.length) throw error;
      return valid.length > 0 ? await queue.enqueueManyIds(valid) : [];
    }
  };
  /** Every line up to this one is written or reported bad: where a rerun may resume. */
  let settledThrough = 0;
  const flush = async () => {
    try {
      if (batch.length > 0) {
        let results: { created: boolean }[];
        try {
          results = await write();
        } catch (error) {
          throw new DatabaseError(
            `${(error as Error)?.message ?? String(error)} Lines 1 to ${
              count(settledThrough)
            } were written ` +
              `before it (${count(enqueued + existing)} tasks); nothing from line ${
                count(settledThrough + 1)
              } on ` +
              `was. Resume from line ${count(settledThrough + 1)}.`,
            { cause: error },
          );
        }
        for (const result of results) result.created ? enqueued++ : existing++;
        batch = [];
        batchLines = [];
        batchBytes = 0;
      }
      settledThrough = lineNumber;
    } finally {
      // Also when the database failed: the lines found bad so far are still worth knowing.
      reportBatch();
    }
  };
  const showProgress = (force = false) => {
    if (!progress) return;
    const done = `${count(lineNumber)} lines, ${count(enqueued + existing)} tasks written`;
    progress.update(
      totalBytes ? `Enqueuing ${bar(bytes / totalBytes)} ${done}` : `Enqueuing… ${done}`,
      force,
    );
  };

  for await (const lines of io.readLines(source, maxLineBytes)) {
    for (const raw of lines) {
      lineNumber++;
      if (raw === null) {
        bytes += maxLineBytes + 1;
        report({
          line: lineNumber,
          error:
            `longer than ${maxLineBytes} bytes (the payload limit plus ${LINE_ROOM / 1024} KiB for the ` +
            `other fields); skipped without reading it whole`,
        });
        continue;
      }
      bytes += raw.length + 1;
      const text = decodeUtf8(raw);
      if (text === undefined) {
        report({ line: lineNumber, error: "not valid UTF-8" });
        continue;
      }
      if (text.trim() === "") continue;
      const item = checkLine(text);
      if ("error" in item) report({ line: lineNumber, error: item.error });
      else {
        batch.push(item.task);
        batchLines.push(lineNumber);
        batchBytes += raw.length;
      }
      if (batch.length >= BATCH_SIZE || batchBytes >= BATCH_BYTES) await flush();
    }
    showProgress();
  }
  await flush();
  showProgress(true);
  progress?.finish();

  if (asJson) {
    io.stdout.write(json({ lines: lineNumber, enqueued, existing, invalid }));
  } else {
    if (invalid.length > MAX_REPORTED_LINES) {
      io.stderr.write(`… and ${count(invalid.length - MAX_REPORTED_LINES)} more bad lines.\n`);
    }
    const dupes = existing > 0 ? ` (${count(existing)} already existed with their idempotency keys)` : "";
    const skipped = invalid.length > 0 ? `; ${count(invalid.length)} bad lines were skipped` : "";
    const tasks = `${count(enqueued)} task${enqueued === 1 ? "" : "s"}`;
    io.stdout.write(`Enqueued ${tasks} from ${count(lineNumber)} lines${dupes}${skipped}.\n`);
  }
  return invalid.length > 0 ? 2 : 0;
}

/**
 * Whether a parsed line is the usual `{"type": "…", "payload": …}`, which {@link NdjsonLine} accepts as it
 * is: checked here directly, since valibot would cost about as much as parsing the line. Anything else
 * goes through the schema, which also words the errors.
 */
function isPlainLine(parsed: unknown): parsed is EnqueueItem {
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return false;
  for (const key in parsed) {
    if (key !== "type" && key !== "payload") return false;
  }
  return typeof (parsed as { type?: unknown }).type === "string";
}

/** The task a line describes, checked for its shape only: the queue checks the rest when it writes. */
function checkLine(text: string): { task: EnqueueItem } | { error: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { error: `invalid JSON: ${(error as Error).message}` };
  }
  const inexact = inexactIntegerProblem(text);
  if (inexact) return { error: inexact };
  if (isPlainLine(parsed)) return { task: parsed };
  const shape = v.safeParse(NdjsonLine, parsed);
  if (!shape.success) {
    const issue = shape.issues[0];
    const path = v.getDotPath(issue);
    if (!path) return { error: `expected a JSON object with a "type", got ${describeJson(parsed)}` };
    // Valibot reports a missing and an unknown key alike; "never" marks the unknown one.
    if (issue.type === "strict_object") {
      return { error: issue.expected === "never" ? `unknown field '${path}'` : `missing field '${path}'` };
    }
    return { error: `${path}: ${issue.message}` };
  }
  return { task: shape.output as EnqueueItem };
}

/** Why the queue would refuse `task`, or undefined when it would take it. */
async function validationError(queue: Queue, task: EnqueueItem): Promise<string | undefined> {
  try {
    await queue.validate(task);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

function describeJson(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}
