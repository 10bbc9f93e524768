/**
 * `prismq enqueue --ndjson`: many tasks from NDJSON lines, in batched transactions, with bad lines reported
 * by number and the good ones written.
 *
 * @module
 */
import { DatabaseError, type EnqueueItem, type Queue } from "../../../mod.ts";
import { UsageError } from "../args.ts";
import { count, json } from "../format.ts";
import { inexactIntegerProblem } from "../../exact_numbers.ts";
import { taskItemShape } from "../../task_item.ts";
import { type CliIo, decodeUtf8, type Signal } from "../io.ts";
import { bar, StatusLine } from "../progress.ts";

/** NDJSON lines are written in transactions of this many tasks, or of this many bytes of lines if fewer. */
const BATCH_SIZE = 10_000;
const BATCH_BYTES = 16 * 1024 * 1024;
export const BATCH_TEXT = count(BATCH_SIZE);

const MAX_REPORTED_LINES = 1000;
/** Room on an NDJSON line for the fields other than the payload (type, key, times), beyond the payload limit. */
export const LINE_ROOM = 64 * 1024;

interface BadLine {
  line: number;
  error: string;
}

/**
 * Enqueues the tasks of the NDJSON lines in `source` (a file, or `-`: standard input) and reports them.
 * SIGINT or SIGTERM stops it after the batch being written, if any, and it says which lines went in.
 *
 * @returns the exit code: 2 when any line was bad, 1 when a signal stopped it
 */
export async function enqueueNdjson(
  source: string,
  queue: Queue,
  asJson: boolean,
  io: CliIo,
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
  /** Which lines went in, for a rerun to resume after them; `when` places that in time (" before it"). */
  const writtenSoFar = (when: string) => {
    if (settledThrough === 0) return `Nothing was written${when}; run it again to start from line 1.`;
    const next = count(settledThrough + 1);
    return `Lines 1 to ${count(settledThrough)} were written${when} (${count(enqueued + existing)} tasks); ` +
      `nothing from line ${next} on was. Resume from line ${next}.`;
  };
  const flush = async () => {
    try {
      if (batch.length > 0) {
        let results: { created: boolean }[];
        try {
          results = await write();
        } catch (error) {
          throw new DatabaseError(
            `${(error as Error)?.message ?? String(error)} ${writtenSoFar(" before it")}`,
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

  // A stop signal ends the load between batches: the batch being written goes in whole, and the lines read
  // after it are dropped unwritten, so that "lines 1 to N were written" is exact and a rerun can resume.
  // Later signals change nothing: that batch is bounded, and a rollback would make the count untrue.
  let stoppedBy: Signal | undefined;
  const reading = interruptible(io.readLines(source, maxLineBytes));
  const unsubscribe = io.onSignal((signal) => {
    // SIGPIPE: stdout is written once, at the end; nothing to stop for.
    if (signal === "SIGPIPE" || stoppedBy) return;
    stoppedBy = signal;
    reading.interrupt();
  });
  try {
    await readAll();
    if (!stoppedBy) await flush();
  } finally {
    unsubscribe();
  }
  showProgress(true);
  progress?.finish();

  if (stoppedBy) {
    if (asJson) {
      io.stdout.write(json({
        lines: settledThrough,
        enqueued,
        existing,
        invalid,
        interrupted: stoppedBy,
        resumeFromLine: settledThrough + 1,
      }));
    }
    io.stderr.write(`prismq enqueue: ${stoppedBy}: stopped. ${writtenSoFar("")}\n`);
    return 1;
  }
  if (asJson) {
    io.stdout.write(json({ lines: lineNumber, enqueued, existing, invalid }));
  } else {
    if (invalid.length > MAX_REPORTED_LINES) {
      io.stderr.write(`… and ${count(invalid.length - MAX_REPORTED_LINES)} more bad lines.\n`);
    }
    const dupes = existing > 0
      ? ` (${count(existing)} already existed with their idempotency or unique keys)`
      : "";
    const skipped = invalid.length > 0 ? `; ${count(invalid.length)} bad lines were skipped` : "";
    const tasks = `${count(enqueued)} task${enqueued === 1 ? "" : "s"}`;
    io.stdout.write(`Enqueued ${tasks} from ${count(lineNumber)} lines${dupes}${skipped}.\n`);
  }
  return invalid.length > 0 ? 2 : 0;

  /** Reads, checks and writes every line, until the input ends or a signal stops it. */
  async function readAll(): Promise<void> {
    for (let lines = await reading.next(); lines !== undefined; lines = await reading.next()) {
      for (const raw of lines) {
        if (stoppedBy) return;
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
  }
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
  const shape = taskItemShape(parsed);
  if ("task" in shape && shape.task.dependsOn !== undefined) {
    // A line's dependencies could be refused only when its batch is written, after lines before it were.
    return {
      error: "dependsOn is not taken on NDJSON lines: enqueue a task with dependencies with " +
        "`prismq enqueue --depends-on` or POST /api/tasks",
    };
  }
  return shape;
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

/**
 * The items of `input` one at a time, `undefined` at its end; after `interrupt()`, at once `undefined`,
 * also for a wait already under way: a pipe may send nothing for a long time, and a stop should not wait.
 */
function interruptible<T>(input: AsyncIterable<T>): { next(): Promise<T | undefined>; interrupt(): void } {
  const iterator = input[Symbol.asyncIterator]();
  let interrupted = false;
  let endWait = () => {};
  return {
    next() {
      if (interrupted) return Promise.resolve(undefined);
      return new Promise((resolve, reject) => {
        endWait = () => resolve(undefined);
        iterator.next().then((result) => resolve(result.done ? undefined : result.value), reject);
      });
    },
    interrupt() {
      interrupted = true;
      endWait();
    },
  };
}
