/**
 * The commands that inspect and manage tasks: list, show, retry, cancel, purge.
 *
 * @module
 */
import {
  isTaskStatus,
  type Task,
  TASK_STATUSES,
  TaskNotFoundError,
  type TaskStatus,
  TERMINAL_STATUSES,
} from "../../../mod.ts";
import {
  expectArguments,
  parseCommand,
  parseDuration,
  parseInteger,
  parseList,
  parseTaskId,
  UsageError,
} from "../args.ts";
import { type Command, COMMON_HELP, COMMON_OPTIONS, withQueue } from "../context.ts";
import {
  count,
  formatDuration,
  formatTime,
  json,
  styleFor,
  styleStatus,
  table,
  truncate,
} from "../format.ts";

function statusFlag(text: string | undefined): TaskStatus | undefined {
  if (text === undefined) return undefined;
  if (!isTaskStatus(text)) {
    throw new UsageError(`Unknown status '${text}'.`, `Use ${TASK_STATUSES.join(", ")}.`);
  }
  return text;
}

const LIST_HELP =
  `Usage: prismq list [--status <status>] [--type <type>] [--queue <name>] [--limit <n>] [--offset <n>] [--json]

Lists tasks, newest first. DUE says when a queued task may run: "now", or "in 5 min 0 s" marked
"scheduled" (it was enqueued to run later) or "backing off" (it waits to retry after a failed attempt).
--json prints the tasks as they are stored (runAfter, attempts and errorMessage say the same).

Options:
  --status <status>  waiting (for dependencies), queued, running, completed, failed or cancelled
  --type <type>      Only this task type
  --queue <name>     Only tasks of this named queue
  --limit <n>        At most this many (default 50)
  --offset <n>       Skip this many first (default 0)
${COMMON_HELP}`;

export const listCommand: Command = {
  name: "list",
  summary: "List tasks",
  help: LIST_HELP,
  async run(argv, { io }) {
    const { values, positionals } = parseCommand("list", argv, {
      ...COMMON_OPTIONS,
      status: { type: "string" },
      type: { type: "string" },
      queue: { type: "string" },
      limit: { type: "string" },
      offset: { type: "string" },
    });
    expectArguments(positionals, 0);
    const status = statusFlag(values.status);
    const limit = values.limit === undefined ? 50 : parseInteger("--limit", values.limit, 1, 100_000);
    const offset = values.offset === undefined ? 0 : parseInteger("--offset", values.offset, 0);
    const tasks = await withQueue(
      io,
      values,
      (queue) => queue.list({ status, type: values.type, queue: values.queue, limit, offset }),
    );
    if (values.json) {
      io.stdout.write(json(tasks));
      return 0;
    }
    if (tasks.length === 0) {
      io.stdout.write("No tasks match.\n");
      return 0;
    }
    const style = styleFor(io.stdout, io);
    const now = Date.now();
    const rows = tasks.map((t) => [
      String(t.id),
      t.type,
      styleStatus(style, t.status),
      `${t.attempts}/${t.maxAttempts}`,
      String(t.priority),
      describeDue(t, now, style),
      formatTime(t.createdAt),
      truncate(t.errorMessage ?? "", 60),
    ]);
    io.stdout.write(
      table(
        ["ID", "TYPE", "STATUS", "ATTEMPTS", "PRIORITY", "DUE", "CREATED", "LAST ERROR"],
        rows,
        style,
        [0, 3, 4],
      ),
    );
    return 0;
  },
};

/**
 * Why a queued task waits, if it does: it was enqueued to run later, or it backs off after a failed attempt
 * (its attempts are counted then; an operator's retry resets them and makes it runnable at once).
 */
function waitReason(task: Task, now: number): "scheduled" | "backing off" | undefined {
  if (task.status !== "queued" || task.runAfter <= now) return undefined;
  return task.attempts > 0 ? "backing off" : "scheduled";
}

/**
 * When a queued task may run: "now", or "in 5 min 0 s · scheduled"; a waiting one, once its dependencies
 * complete; "-" for any other status.
 */
function describeDue(task: Task, now: number, style: ReturnType<typeof styleFor>): string {
  if (task.status === "waiting") return style.yellow("after its dependencies");
  if (task.status !== "queued") return "-";
  const reason = waitReason(task, now);
  if (reason === undefined) return "now";
  const text = `in ${formatDuration(task.runAfter - now)} · ${reason}`;
  return reason === "backing off" ? style.yellow(text) : style.cyan(text);
}

const SHOW_HELP = `Usage: prismq show <id> [--json]

Shows one task: every field, its payload, its retry policy (when it has its own), its progress (the last
value its handler gave ctx.progress), its result (what its handler returned), the tasks it depends on and
those that depend on it (when there are any), and its log.
${COMMON_HELP}`;

export const showCommand: Command = {
  name: "show",
  summary: "Show a task and its log",
  help: SHOW_HELP,
  async run(argv, { io }) {
    const { values, positionals } = parseCommand("show", argv, COMMON_OPTIONS);
    expectArguments(positionals, 1);
    const id = parseTaskId("show", positionals[0]);
    const { task, logs, dependencies } = await withQueue(io, values, async (queue) => {
      const task = await queue.get(id);
      if (!task) throw new TaskNotFoundError(id);
      return { task, logs: await queue.logs(id), dependencies: await queue.dependencies(id) };
    });
    if (values.json) {
      io.stdout.write(json({ ...task, ...dependencies, logs }));
      return 0;
    }
    const style = styleFor(io.stdout, io);
    io.stdout.write(describeTask(task, style));
    for (
      const [label, ids] of [["Depends on", dependencies.dependsOn], [
        "Waited on by",
        dependencies.dependents,
      ]] as const
    ) {
      if (ids.length > 0) io.stdout.write(`${style.bold(label)}: ${ids.join(", ")}\n`);
    }
    io.stdout.write(`\n${style.bold("Log")}\n`);
    if (logs.length === 0) io.stdout.write("  (empty)\n");
    for (const entry of logs) {
      const details = entry.details === undefined ? "" : ` ${JSON.stringify(entry.details)}`;
      io.stdout.write(`  ${formatTime(entry.at)} ${entry.level.padEnd(5)} ${entry.message}${details}\n`);
    }
    return 0;
  },
};

/** The due time, and for a queued task that waits, how long and why. */
function describeRunnableFrom(task: Task): string {
  const now = Date.now();
  const reason = waitReason(task, now);
  if (reason === undefined) return formatTime(task.runAfter);
  return `${formatTime(task.runAfter)} (in ${formatDuration(task.runAfter - now)}, ${reason})`;
}

/** A task's `unique` key and its scope. */
function describeUnique(task: Task): string {
  if (task.uniqueKey === null) return "-";
  return task.uniqueForMs === null
    ? `${task.uniqueKey} (while queued or running)`
    : `${task.uniqueKey} (until ${formatTime(task.createdAt + task.uniqueForMs)})`;
}

function describeTask(task: Task, style: ReturnType<typeof styleFor>): string {
  const fields: [string, string][] = [
    ["id", String(task.id)],
    ["type", task.type],
    ["queue", task.queue],
    ["status", styleStatus(style, task.status)],
    ["priority", String(task.priority)],
    ["attempts", `${task.attempts} of ${task.maxAttempts}`],
    ["idempotency key", task.idempotencyKey ?? "-"],
    ["unique key", describeUnique(task)],
    ["timeout", task.timeoutMs === null ? "-" : `${task.timeoutMs} ms`],
    ["locked by", task.lockedBy ?? "-"],
    ["created", formatTime(task.createdAt)],
    ["runnable from", describeRunnableFrom(task)],
    ["started", formatTime(task.startedAt)],
    ["lease until", formatTime(task.leaseUntil)],
    ["finished", formatTime(task.finishedAt)],
    ["updated", formatTime(task.updatedAt)],
    ["last error", task.errorMessage ?? "-"],
    ["retry policy", task.retryPolicy === null ? "-" : JSON.stringify(task.retryPolicy)],
  ];
  const width = Math.max(...fields.map(([name]) => name.length));
  const lines = fields.map(([name, value]) => `${style.bold(name.padEnd(width))}  ${value}`);
  // JSON values last, indented under their names; no progress or result (null) as "-".
  const block = (name: string, value: unknown, none?: string) =>
    `${style.bold(name.padEnd(width))}  ${
      value === null && none !== undefined
        ? none
        : JSON.stringify(value, null, 2).replace(/\n/g, "\n" + " ".repeat(width + 2))
    }`;
  lines.push(
    block("payload", task.payload),
    block("progress", task.progress, "-"),
    block("result", task.result, "-"),
  );
  return lines.join("\n") + "\n";
}

const RETRY_HELP = `Usage:
  prismq retry <id>
  prismq retry --failed [--type <type>]

Puts a failed or cancelled task back in the queue, runnable now, with its attempts reset; with --failed,
every failed task (of one type, with --type).
${COMMON_HELP}`;

export const retryCommand: Command = {
  name: "retry",
  summary: "Queue failed or cancelled tasks again",
  help: RETRY_HELP,
  async run(argv, { io }) {
    const { values, positionals } = parseCommand("retry", argv, {
      ...COMMON_OPTIONS,
      failed: { type: "boolean", default: false },
      type: { type: "string" },
    });
    if (values.failed && positionals.length > 0) {
      throw new UsageError("Give a task id or --failed, not both.");
    }
    if (!values.failed && values.type !== undefined) throw new UsageError("--type goes with --failed.");
    expectArguments(positionals, 1);
    const id = values.failed ? undefined : parseTaskId("retry", positionals[0]);
    if (id === undefined) {
      const requeued = await withQueue(io, values, (queue) => queue.retryFailed({ type: values.type }));
      if (values.json) io.stdout.write(json({ requeued }));
      else io.stdout.write(`Queued ${count(requeued)} failed task${requeued === 1 ? "" : "s"} again.\n`);
      return 0;
    }
    const task = await withQueue(io, values, (queue) => queue.retry(id));
    if (values.json) io.stdout.write(json(task));
    else io.stdout.write(`Task ${task.id} (${task.type}) is queued again, runnable now.\n`);
    return 0;
  },
};

const CANCEL_HELP = `Usage: prismq cancel <id> [--json]

Cancels a waiting, queued or running task, and the tasks waiting on it, down the chain (each says why). A
running task's handler is told to stop (its signal aborts), and its result is discarded; its worker reports
it as cancelled (a "cancelled" event with --json).
${COMMON_HELP}`;

export const cancelCommand: Command = {
  name: "cancel",
  summary: "Cancel a waiting, queued or running task",
  help: CANCEL_HELP,
  async run(argv, { io }) {
    const { values, positionals } = parseCommand("cancel", argv, COMMON_OPTIONS);
    expectArguments(positionals, 1);
    const id = parseTaskId("cancel", positionals[0]);
    const task = await withQueue(io, values, (queue) => queue.cancel(id));
    if (values.json) io.stdout.write(json(task));
    else io.stdout.write(`Task ${task.id} (${task.type}) is cancelled.\n`);
    return 0;
  },
};

const PURGE_HELP =
  `Usage: prismq purge --status <completed|failed|cancelled>[,...] --older-than <duration> [--json]

Deletes finished tasks, and their logs, that finished longer ago than --older-than.

Options:
  --status <list>          Any of completed, failed, cancelled, comma-separated (required)
  --older-than <duration>  For example 7d, 12h, 30m (required; 0s deletes all of them)
${COMMON_HELP}`;

export const purgeCommand: Command = {
  name: "purge",
  summary: "Delete old finished tasks",
  help: PURGE_HELP,
  async run(argv, { io }) {
    const { values, positionals } = parseCommand("purge", argv, {
      ...COMMON_OPTIONS,
      status: { type: "string" },
      "older-than": { type: "string" },
    });
    expectArguments(positionals, 0);
    if (values.status === undefined) {
      throw new UsageError(
        "Missing --status.",
        "Say which finished tasks to delete: completed, failed or cancelled.",
      );
    }
    if (values["older-than"] === undefined) {
      throw new UsageError(
        "Missing --older-than.",
        "Say how old, like --older-than 7d (0s for all of them).",
      );
    }
    const statuses = parseList("--status", values.status).map((status) => {
      if (!TERMINAL_STATUSES.includes(status as TaskStatus)) {
        throw new UsageError(
          `Cannot purge '${status}' tasks.`,
          "Only completed, failed and cancelled tasks can be purged.",
        );
      }
      return status as TaskStatus;
    });
    const olderThanMs = parseDuration("--older-than", values["older-than"]);
    const deleted = await withQueue(io, values, (queue) => queue.purge({ statuses, olderThanMs }));
    if (values.json) io.stdout.write(json({ deleted }));
    else io.stdout.write(`Deleted ${count(deleted)} task${deleted === 1 ? "" : "s"}.\n`);
    return 0;
  },
};
