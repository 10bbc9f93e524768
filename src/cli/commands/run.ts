/**
 * `prismq run`: a worker for the linked handlers, stopped gracefully by SIGINT or SIGTERM.
 *
 * @module
 */
import {
  CLAIM_STRATEGIES,
  type ClaimStrategy,
  type Task,
  type WaitingTasks,
  WorkerEngine,
  type WorkerEvent,
} from "../../../mod.ts";
import {
  expectArguments,
  parseCommand,
  parseDuration,
  parseInteger,
  parseList,
  UsageError,
} from "../args.ts";
import { type Command, COMMON_HELP, COMMON_OPTIONS, linkedRegistry, withDatabase } from "../context.ts";
import { SERVE_HELP, servingWhile, workerServeSettings } from "../serve_http.ts";
import { queueName } from "../../queue_name.ts";
import { count, formatDuration, formatTime, styleFor } from "../format.ts";
import { StatusLine } from "../progress.ts";
import { clearInterval, setImmediate, setInterval } from "node:timers";

const DEFAULT_CONCURRENCY = 4;
const DEFAULT_GRACE = "20s";
/** How often the live status line is redrawn when no event has redrawn it. */
const STATUS_REDRAW_MS = 500;

const HELP = `Usage: prismq run [options]

Runs a worker: claims tasks and runs them with the handlers linked into this build. SIGINT or SIGTERM
stops it gracefully: it claims nothing more, gives running handlers a grace period to finish, then hands
their tasks straight back to the queue (a second signal ends the grace period at once). One line says how
many tasks went back; --json has a "released" event for each. It also fires the schedules linked into
this build (see 'prismq schedules'), each slot once however many workers run.

Options:
  --concurrency <n>    Handlers run at once (default ${DEFAULT_CONCURRENCY})
  --prefetch <n>       Most tasks claimed ahead of free slots when handlers are quick (default 512; 0: none)
  --types <a,b>        Claim only these task types. Default: every type, and a task whose type has no
                       linked handler fails at once, without retry (for a fleet that shares one build)
  --types linked       Claim only the types linked into this build, leaving the others to workers that
                       have them: for a rolling deploy, or workers built with different handlers
  --queues <a,b>       Claim only from these named queues, sharing --concurrency. Default: every queue
  --queues <a:4,b:2>   Each queue with slots of its own (a lane per queue: a worker '<id>/<queue>' each;
                       a queue without ':n' gets --concurrency). Paused queues and every queue's
                       fleet-wide limits hold whichever queues a worker serves (see 'prismq queue --help')
  --strategy <name>    ${CLAIM_STRATEGIES.join(" | ")} (default priority)
  --lease <duration>   How long a claim holds a task before another worker may take it; renewed while
                       this worker lives (default 60s)
  --poll <duration>    How often an idle worker looks for new tasks (default 100ms)
  --grace <duration>   How long running handlers may finish after a stop signal (default ${DEFAULT_GRACE})
  --until-empty        Exit 0 once no task is runnable or running, saying how many tasks wait for a
                       later time (scheduled, or backing off after a failed attempt) and when the next
                       is due
  --worker-id <id>     Name shown by 'prismq workers' (default <host>-<pid>)
  --serve <host:port>  Serve the HTTP API from this worker too, until it stops ('prismq serve --help')
${SERVE_HELP}
${COMMON_HELP}  (--json prints one JSON event per line)`;

export const runCommand: Command = {
  name: "run",
  summary: "Run a worker",
  help: HELP,
  async run(argv, { io, handlers, schedules }) {
    const { values, positionals } = parseCommand("run", argv, {
      ...COMMON_OPTIONS,
      concurrency: { type: "string" },
      prefetch: { type: "string" },
      types: { type: "string" },
      queues: { type: "string" },
      strategy: { type: "string" },
      lease: { type: "string" },
      poll: { type: "string" },
      grace: { type: "string" },
      "until-empty": { type: "boolean", default: false },
      "worker-id": { type: "string" },
      serve: { type: "string" },
      "max-body": { type: "string" },
    });
    expectArguments(positionals, 0);
    const linked = handlers.map((handler) => handler.type);
    const types = values.types === undefined ? undefined : parseTypes(values.types, linked);
    for (const type of types ?? []) {
      if (!linked.includes(type)) {
        throw new UsageError(
          `No linked handler for '${type}' in --types.`,
          `Linked types: ${linked.join(", ")}.`,
        );
      }
    }
    const strategy = (values.strategy ?? "priority") as ClaimStrategy;
    if (!CLAIM_STRATEGIES.includes(strategy)) {
      throw new UsageError(
        `Unknown --strategy '${values.strategy}'.`,
        `Use one of: ${CLAIM_STRATEGIES.join(", ")}.`,
      );
    }
    const concurrency = values.concurrency === undefined
      ? DEFAULT_CONCURRENCY
      : parseInteger("--concurrency", values.concurrency, 1, 1000);
    const prefetch = values.prefetch === undefined
      ? undefined
      : parseInteger("--prefetch", values.prefetch, 0, 10_000);
    const queues = values.queues === undefined ? undefined : parseQueues(values.queues, concurrency);
    const leaseMs = parseDuration("--lease", values.lease ?? "60s");
    if (leaseMs < 1000) throw new UsageError("--lease must be at least 1s.");
    const pollIntervalMs = parseDuration("--poll", values.poll ?? "100ms");
    if (pollIntervalMs < 1) throw new UsageError("--poll must be at least 1ms.");
    const graceMs = parseDuration("--grace", values.grace ?? DEFAULT_GRACE);
    const workerId = values["worker-id"] ?? `${io.hostname}-${io.pid}`;
    if (workerId.trim() === "") throw new UsageError("--worker-id is empty.");
    const serving = workerServeSettings(values.serve, values["max-body"], io.env);

    return await withDatabase(io, values, async (db) => {
      const report = reporter(io, values.json, workerId);
      const worker = new WorkerEngine({
        db,
        workerId,
        handlerRegistry: linkedRegistry(handlers, schedules),
        strategy,
        leaseMs,
        pollIntervalMs,
        concurrency,
        prefetch,
        types,
        queues,
        shutdownGraceMs: graceMs,
        host: io.hostname,
        pid: io.pid,
        onEvent: report.event,
      });
      report.countRunning(() => worker.runningCount);
      let signals = 0;
      const unsubscribe = io.onSignal((signal) => {
        // Nobody reads the output any more: stop as on a first signal, but never count as a second one
        // (when a whole pipeline is stopped, the reader's end goes first or last, as it happens).
        if (signal === "SIGPIPE") {
          if (signals === 0) void worker.stop({ graceMs });
          return;
        }
        signals++;
        if (signals === 1) {
          report.note(
            `${signal}: finishing running tasks (up to ${formatDuration(graceMs)}), claiming no more.`,
          );
          void worker.stop({ graceMs });
        } else {
          report.note(`${signal} again: handing running tasks back to the queue now.`);
          void worker.stop({ graceMs: 0 });
        }
      });
      report.note(
        `Worker ${workerId} started: concurrency ${describeConcurrency(concurrency, queues)}, ` +
          `strategy ${strategy}, queues ${describeQueues(queues)}, types ${types?.join(", ") ?? "all"}.`,
      );
      try {
        const summary = await servingWhile(
          { io, db, handlers, schedules, settings: serving, note: (text) => report.note(text) },
          () => worker.runLoop({ untilEmpty: values["until-empty"] }),
        );
        report.finish(
          `Worker ${workerId} stopped: ${count(summary.completed)} completed, ${
            count(summary.failed)
          } failed, ` +
            `${count(summary.retried)} retried, ${count(summary.snoozed)} snoozed, ` +
            `${count(summary.cancelled)} cancelled, ` +
            `${count(summary.leaseLost)} lost their lease, ` +
            `${count(summary.released)} handed back.`,
          summary.waiting,
        );
        return 0;
      } catch (error) {
        report.finish(`Worker ${workerId} stopped on an error.`);
        throw error;
      } finally {
        unsubscribe();
      }
    });
  },
};

/**
 * The queues of --queues: a list sharing the worker's slots (`a,b`), or, when any has a concurrency of its
 * own (`a:4,b`), a map of lanes, those without one getting --concurrency.
 */
function parseQueues(text: string, concurrency: number): string[] | Record<string, number> {
  const entries = parseList("--queues", text).map((item) => {
    const [name, slots, extra] = item.split(":");
    if (extra !== undefined) throw new UsageError(`Invalid queue '${item}' in --queues: use name or name:n.`);
    const queue = queueName(name, "A queue in --queues");
    return [
      queue,
      slots === undefined ? undefined : parseInteger(`--queues ${queue}`, slots, 1, 1000),
    ] as const;
  });
  const names = entries.map(([name]) => name);
  const repeated = names.find((name, i) => names.indexOf(name) !== i);
  if (repeated) throw new UsageError(`The queue '${repeated}' is named twice in --queues.`);
  if (entries.every(([, slots]) => slots === undefined)) return names;
  return Object.fromEntries(entries.map(([name, slots]) => [name, slots ?? concurrency]));
}

function describeQueues(queues: string[] | Record<string, number> | undefined): string {
  if (queues === undefined) return "all";
  return Array.isArray(queues) ? queues.join(", ") : Object.keys(queues).join(", ");
}

function describeConcurrency(concurrency: number, queues: string[] | Record<string, number> | undefined) {
  if (queues === undefined || Array.isArray(queues)) return String(concurrency);
  return Object.entries(queues).map(([name, slots]) => `${name} ${slots}`).join(", ");
}

/** The types of --types: a list, or 'linked' for every type this build links. */
function parseTypes(text: string, linked: readonly string[]): string[] {
  if (text.trim() !== "linked") {
    const types = parseList("--types", text);
    if (types.includes("linked") && !linked.includes("linked")) {
      throw new UsageError("'linked' in --types stands alone: --types linked claims every linked type.");
    }
    return types;
  }
  if (linked.length === 0) {
    throw new UsageError("--types linked: this build links no handlers, so it would claim nothing.");
  }
  return [...linked];
}

/**
 * How the worker reports: one JSON object per line with --json; a live status line on a terminal, with
 * failures printed above it; otherwise a plain line per event.
 */
function reporter(io: Parameters<Command["run"]>[1]["io"], asJson: boolean, workerId: string) {
  const style = styleFor(io.stdout, io);
  const live = !asJson && io.stdout.isTTY ? new StatusLine(io.stdout, 250) : undefined;
  const started = Date.now();
  const totals = { completed: 0, failed: 0, retried: 0 };
  // Tasks handed back at shutdown: one line for all of them (a busy worker hands back hundreds at once);
  // --json still has an event for each.
  let handedBack = 0;
  let firstHandedBack: Task | undefined;
  // Handlers running now; claimed tasks may still wait in the worker's claim-ahead buffer.
  let running = () => 0;
  // Formatted once per millisecond: a busy worker reports many events in each.
  let stampedAt = NaN;
  let stampText = "";
  const stamp = () => {
    const now = Date.now();
    if (now !== stampedAt) {
      stampedAt = now;
      stampText = new Date(now).toISOString();
    }
    return stampText;
  };
  // A busy worker reports thousands of events a second: they go out together, once per turn of the
  // event loop, rather than one write each.
  let pending: string[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    io.stdout.write(pending.join(""));
    pending = [];
  };
  const write = (text: string) => {
    if (pending.length === 0) setImmediate(flush);
    pending.push(text);
  };
  const line = (text: string) => (live ? live.print(text) : write(text + "\n"));
  const drawStatus = () => {
    const seconds = Math.max(0.001, (Date.now() - started) / 1000);
    live?.update(
      `${style.bold(workerId)}  done ${style.green(count(totals.completed))} · failed ` +
        `${style.red(count(totals.failed))} · retried ${count(totals.retried)} · running ${running()} · ` +
        `${(totals.completed / seconds).toFixed(1)}/s`,
    );
  };
  // Redrawn on a timer too, not only on events: a handler that runs for minutes sends none meanwhile, and
  // its line would go on showing the counts (and the rate) of when it started.
  const redraw = live ? setInterval(drawStatus, STATUS_REDRAW_MS) : undefined;
  redraw?.unref();
  return {
    note(text: string) {
      if (asJson) write(JSON.stringify({ at: stamp(), event: "note", message: text }) + "\n");
      else line(style.dim(text));
    },
    countRunning(count: () => number) {
      running = count;
    },
    /** Ends the output with the worker's last words, and what still waits for later when it ran dry. */
    finish(text: string, waiting?: WaitingTasks) {
      clearInterval(redraw);
      if (firstHandedBack) line(`${stamp()} ${describeHandedBack(handedBack, firstHandedBack, style)}`);
      drawStatus();
      live?.finish();
      if (waiting && waiting.count > 0 && waiting.nextRunAfter !== null) {
        const message = describeWaiting(waiting.count, waiting.nextRunAfter);
        if (asJson) {
          write(JSON.stringify({ at: stamp(), event: "waiting", ...waiting, message }) + "\n");
        } else line(style.dim(message));
      }
      this.note(text);
      flush();
    },
    event(event: WorkerEvent) {
      if (event.type === "completed") totals.completed++;
      if (event.type === "failed") totals.failed++;
      if (event.type === "retrying") totals.retried++;
      if (asJson) {
        write(JSON.stringify(eventJson(event, stamp())) + "\n");
        return;
      }
      if (event.type === "released") {
        handedBack++;
        firstHandedBack ??= event.task;
        return;
      }
      if (live) {
        if (event.type !== "completed" && event.type !== "claimed") {
          live.print(`${stamp()} ${describeEvent(event, style)}`);
        }
        drawStatus();
      } else if (event.type !== "claimed") {
        line(`${stamp()} ${describeEvent(event, style)}`);
      }
    },
  };
}

function describeEvent(event: WorkerEvent, style: ReturnType<typeof styleFor>): string {
  if (event.type === "error") {
    return style.red(`error: ${(event.error as Error)?.message ?? String(event.error)}`);
  }
  const task = `task ${event.task.id} (${event.task.type})`;
  switch (event.type) {
    case "claimed":
      return `claimed ${task}`;
    case "completed":
      return `${style.green("completed")} ${task} in ${formatDuration(event.durationMs)}`;
    case "retrying":
      return `${style.yellow("retrying")} ${task} after attempt ${event.task.attempts}, at ` +
        `${new Date(event.runAfter).toISOString()}: ${event.error}`;
    case "snoozed":
      return `${style.yellow("snoozed")} ${task} until ${new Date(event.runAfter).toISOString()}, the ` +
        `attempt given back`;
    case "failed":
      return `${style.red("failed")} ${task} after attempt ${event.task.attempts}: ${event.error}`;
    case "cancelled":
      return `${style.yellow("cancelled")} ${task} while this worker held it`;
    case "lease-lost":
      return `${style.yellow("lease lost")} ${task}: ${event.reason.message}`;
    case "released":
      return `${style.yellow("handed back")} ${task} to the queue`;
  }
}

/** "2 tasks wait for a later time; the next is due at 2030-01-31T09:00:00.000Z (in 4 min 59 s)." */
function describeWaiting(tasks: number, nextRunAfter: number): string {
  const wait = Math.max(0, nextRunAfter - Date.now());
  return `${count(tasks)} task${tasks === 1 ? " waits" : "s wait"} for a later time; the next is due at ` +
    `${formatTime(nextRunAfter)} (in ${formatDuration(wait)}).`;
}

/** One line for every task handed back at shutdown: the task itself when it is only one. */
function describeHandedBack(tasks: number, first: Task, style: ReturnType<typeof styleFor>): string {
  return tasks === 1
    ? `${style.yellow("handed back")} task ${first.id} (${first.type}) to the queue`
    : `${style.yellow("handed back")} ${count(tasks)} tasks to the queue`;
}

function eventJson(event: WorkerEvent, at: string): Record<string, unknown> {
  if (event.type === "error") {
    return { at, event: "error", message: (event.error as Error)?.message ?? String(event.error) };
  }
  const base = {
    at,
    event: event.type,
    taskId: event.task.id,
    type: event.task.type,
    attempt: event.task.attempts,
  };
  switch (event.type) {
    case "completed":
      return { ...base, durationMs: event.durationMs };
    case "retrying":
      return { ...base, durationMs: event.durationMs, error: event.error, runAfter: event.runAfter };
    case "snoozed":
      return { ...base, durationMs: event.durationMs, runAfter: event.runAfter };
    case "failed":
      return { ...base, durationMs: event.durationMs, error: event.error };
    case "lease-lost":
      return { ...base, reason: event.reason.message };
    default:
      return base;
  }
}
