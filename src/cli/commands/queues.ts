/**
 * `prismq queues` lists the named queues: depth, running tasks, limits, pause and oldest wait.
 * `prismq queue set|pause|resume <name>` changes a queue's fleet-wide limits, or pauses and resumes it.
 *
 * @module
 */
import type { QueueInfo, QueueSettings } from "../../../mod.ts";
import { formatRate, parseRate, type QueueLimits, queueName } from "../../queue_name.ts";
import { expectArguments, parseCommand, parseInteger, UsageError } from "../args.ts";
import { type Command, COMMON_HELP, COMMON_OPTIONS, withQueue } from "../context.ts";
import { formatDuration, json, styleFor, table } from "../format.ts";

const QUEUES_HELP = `Usage: prismq queues [--json]

Lists every queue that has tasks queued or running, or settings: how many tasks it has queued (due now or
later) and running (claimed, on any worker), its fleet-wide limits, whether it is paused, and how long its
oldest runnable task has waited.
${COMMON_HELP}`;

const QUEUE_HELP = `Usage: prismq queue set <name> [--concurrency N|none] [--rate N/interval|none]
       prismq queue pause <name>
       prismq queue resume <name>

Changes a named queue's settings, stored in the database and enforced at every claim, by every worker on
every host, from the next claim on (on PostgreSQL, workers claim from a queue newly limited by another
process within a second). Running tasks keep running.

  set      --concurrency N   at most N of the queue's tasks run at once across the fleet (claimed-ahead
                             tasks count); 'none' removes the limit
           --rate N/interval at most N of its tasks are claimed per interval across the fleet: 100/s,
                             5/2m, 1000/1h (windows aligned to the clock, so up to 2N across a window's
                             edge; a task claimed ahead of a free slot starts when one frees); 'none'
                             removes it
           A limit not given keeps its value.
  pause    no worker claims the queue's tasks until it is resumed (tasks already claimed ahead still run)
  resume   workers claim its tasks again
  --new    the queue has no tasks or settings yet: set it up all the same (without it, an unknown name is
           refused, so that a misspelt one does not make a queue of its own)

Prints the queue's settings (--json: { name, concurrency, rate, paused }).
${COMMON_HELP}`;

/** A settings line: `emails: concurrency 5, rate 100/s, paused`. */
function describeSettings(settings: QueueSettings): string {
  return `${settings.name}: concurrency ${settings.concurrency ?? "unlimited"}, rate ${
    settings.rate ? formatRate(settings.rate) : "unlimited"
  }${settings.paused ? ", paused" : ""}\n`;
}

export const queuesCommand: Command = {
  name: "queues",
  summary: "List named queues: depth, running, limits, pauses",
  help: QUEUES_HELP,
  async run(argv, { io }) {
    const { values, positionals } = parseCommand("queues", argv, COMMON_OPTIONS);
    expectArguments(positionals, 0);
    const queues: QueueInfo[] = await withQueue(io, values, (queue) => queue.listQueues());
    if (values.json) {
      io.stdout.write(json(queues));
      return 0;
    }
    if (queues.length === 0) {
      io.stdout.write("No queues yet: tasks go to 'default' unless enqueued with --queue.\n");
      return 0;
    }
    const style = styleFor(io.stdout, io);
    const rows = queues.map((q) => [
      q.name,
      String(q.queued),
      String(q.running),
      q.concurrency === null ? "-" : String(q.concurrency),
      q.rate ? formatRate(q.rate) : "-",
      q.paused ? style.yellow("paused") : style.green("active"),
      q.oldestWaitMs === null ? "-" : formatDuration(q.oldestWaitMs),
    ]);
    io.stdout.write(
      table(["QUEUE", "QUEUED", "RUNNING", "CONCURRENCY", "RATE", "STATE", "OLDEST WAIT"], rows, style, [
        1,
        2,
        3,
      ]),
    );
    return 0;
  },
};

export const queueCommand: Command = {
  name: "queue",
  summary: "Set a queue's limits, pause or resume it",
  help: QUEUE_HELP,
  async run(argv, { io }) {
    const { values, positionals } = parseCommand("queue", argv, {
      ...COMMON_OPTIONS,
      concurrency: { type: "string" },
      rate: { type: "string" },
      new: { type: "boolean" },
    });
    const [action, name] = positionals;
    if (action !== "set" && action !== "pause" && action !== "resume") {
      throw new UsageError(
        action === undefined ? "Missing action." : `Unknown action '${action}'.`,
        "Usage: prismq queue set|pause|resume <name>",
      );
    }
    if (name === undefined) {
      throw new UsageError("Missing queue name.", `Usage: prismq queue ${action} <name>`);
    }
    expectArguments(positionals, 2);
    const checked = queueName(name, "The queue");
    if (action !== "set" && (values.concurrency !== undefined || values.rate !== undefined)) {
      throw new UsageError(`--concurrency and --rate go with 'prismq queue set', not '${action}'.`);
    }
    const limits: Partial<QueueLimits> = {};
    if (values.concurrency !== undefined) {
      limits.concurrency = values.concurrency === "none"
        ? null
        : parseInteger("--concurrency", values.concurrency, 1);
    }
    if (values.rate !== undefined) limits.rate = values.rate === "none" ? null : parseRate(values.rate);
    if (action === "set" && Object.keys(limits).length === 0) {
      throw new UsageError("Nothing to set.", "Give --concurrency, --rate, or both ('none' removes one).");
    }
    const settings = await withQueue(io, values, async (queue) => {
      // A misspelt name would make a queue of its own and report success while the real one runs on.
      const known = (await queue.listQueues()).map((q) => q.name);
      if (!known.includes(checked) && !values.new) {
        throw new UsageError(
          `No queue '${checked}' has tasks or settings${
            known.length === 0 ? "" : ` (queues: ${known.map((q) => `'${q}'`).join(", ")})`
          }.`,
          "Check the name, or pass --new to set up a queue before its first task.",
        );
      }
      return action === "set"
        ? queue.setQueueLimits(checked, limits)
        : action === "pause"
        ? queue.pauseQueue(checked)
        : queue.resumeQueue(checked);
    });
    io.stdout.write(values.json ? json(settings) : describeSettings(settings));
    return 0;
  },
};
