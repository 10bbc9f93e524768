/**
 * `prismq run`: a worker for the linked handlers, stopped gracefully by SIGINT or SIGTERM.
 *
 * @module
 */
import { CLAIM_STRATEGIES, type ClaimStrategy, WorkerEngine, type WorkerEvent } from "../../../mod.ts";
import {
  expectArguments,
  parseCommand,
  parseDuration,
  parseInteger,
  parseList,
  UsageError,
} from "../args.ts";
import { type Command, COMMON_HELP, COMMON_OPTIONS, linkedRegistry, openDatabase } from "../context.ts";
import { count, formatDuration, styleFor } from "../format.ts";
import { StatusLine } from "../progress.ts";
import { setImmediate } from "node:timers";

const DEFAULT_CONCURRENCY = 4;
const DEFAULT_GRACE = "20s";

const HELP = `Usage: prismq run [options]

Runs a worker: claims tasks and runs them with the handlers linked into this build. SIGINT or SIGTERM
stops it gracefully: it claims nothing more, gives running handlers a grace period to finish, then hands
their tasks straight back to the queue (a second signal ends the grace period at once).

Options:
  --concurrency <n>    Handlers run at once (default ${DEFAULT_CONCURRENCY})
  --prefetch <n>       Most tasks claimed ahead of free slots when handlers are quick (default 512; 0: none)
  --types <a,b>        Claim only these task types (default: every type; a task whose type has no
                       linked handler fails at once)
  --strategy <name>    ${CLAIM_STRATEGIES.join(" | ")} (default priority)
  --lease <duration>   How long a claim holds a task before another worker may take it; renewed while
                       this worker lives (default 60s)
  --poll <duration>    How often an idle worker looks for new tasks (default 100ms)
  --grace <duration>   How long running handlers may finish after a stop signal (default ${DEFAULT_GRACE})
  --until-empty        Exit 0 once no task is runnable or running
  --worker-id <id>     Name shown by 'prismq workers' (default <host>-<pid>)
${COMMON_HELP}  (--json prints one JSON event per line)`;

export const runCommand: Command = {
  name: "run",
  summary: "Run a worker",
  help: HELP,
  async run(argv, { io, handlers }) {
    const { values, positionals } = parseCommand("run", argv, {
      ...COMMON_OPTIONS,
      concurrency: { type: "string" },
      prefetch: { type: "string" },
      types: { type: "string" },
      strategy: { type: "string" },
      lease: { type: "string" },
      poll: { type: "string" },
      grace: { type: "string" },
      "until-empty": { type: "boolean", default: false },
      "worker-id": { type: "string" },
    });
    expectArguments(positionals, 0);
    const linked = handlers.map((handler) => handler.type);
    const types = values.types === undefined ? undefined : parseList("--types", values.types);
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
    const leaseMs = parseDuration("--lease", values.lease ?? "60s");
    if (leaseMs < 1000) throw new UsageError("--lease must be at least 1s.");
    const pollIntervalMs = parseDuration("--poll", values.poll ?? "100ms");
    if (pollIntervalMs < 1) throw new UsageError("--poll must be at least 1ms.");
    const graceMs = parseDuration("--grace", values.grace ?? DEFAULT_GRACE);
    const workerId = values["worker-id"] ?? `${io.hostname}-${io.pid}`;
    if (workerId.trim() === "") throw new UsageError("--worker-id is empty.");

    const db = await openDatabase(values.db, io);
    const report = reporter(io, values.json, workerId);
    const worker = new WorkerEngine({
      db,
      workerId,
      handlerRegistry: linkedRegistry(handlers),
      strategy,
      leaseMs,
      pollIntervalMs,
      concurrency,
      prefetch,
      types,
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
      `Worker ${workerId} started: concurrency ${concurrency}, strategy ${strategy}, ` +
        `types ${types?.join(", ") ?? "all"}.`,
    );
    try {
      const summary = await worker.runLoop({ untilEmpty: values["until-empty"] });
      report.finish(
        `Worker ${workerId} stopped: ${count(summary.completed)} completed, ${
          count(summary.failed)
        } failed, ` +
          `${count(summary.retried)} retried, ${count(summary.leaseLost)} lost their lease, ` +
          `${count(summary.released)} handed back.`,
      );
      return 0;
    } catch (error) {
      report.finish(`Worker ${workerId} stopped on an error.`);
      throw error;
    } finally {
      unsubscribe();
      db.close();
    }
  },
};

/**
 * How the worker reports: one JSON object per line with --json; a live status line on a terminal, with
 * failures printed above it; otherwise a plain line per event.
 */
function reporter(io: Parameters<Command["run"]>[1]["io"], asJson: boolean, workerId: string) {
  const style = styleFor(io.stdout, io);
  const live = !asJson && io.stdout.isTTY ? new StatusLine(io.stdout, 250) : undefined;
  const started = Date.now();
  const totals = { completed: 0, failed: 0, retried: 0 };
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
  return {
    note(text: string) {
      if (asJson) write(JSON.stringify({ at: stamp(), event: "note", message: text }) + "\n");
      else line(style.dim(text));
    },
    countRunning(count: () => number) {
      running = count;
    },
    finish(text: string) {
      drawStatus();
      live?.finish();
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
    case "failed":
      return `${style.red("failed")} ${task} after attempt ${event.task.attempts}: ${event.error}`;
    case "lease-lost":
      return `${style.yellow("lease lost")} ${task}: ${event.reason.message}`;
    case "released":
      return `${style.yellow("handed back")} ${task} to the queue`;
  }
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
    case "failed":
      return { ...base, durationMs: event.durationMs, error: event.error };
    case "lease-lost":
      return { ...base, reason: event.reason.message };
    default:
      return base;
  }
}
