/**
 * `prismq workers`: the workers that registered, how fresh their heartbeat is, and what they run.
 *
 * @module
 */
import type { WorkerInfo } from "../../../mod.ts";
import { expectArguments, parseCommand, parseDuration } from "../args.ts";
import { type Command, COMMON_HELP, COMMON_OPTIONS, withQueue } from "../context.ts";
import { formatDuration, formatTime, json, styleFor, table } from "../format.ts";

export const STALE_AFTER_DEFAULT = "30s";

const HELP = `Usage: prismq workers [--stale-after <duration>] [--prune] [--json]

Lists workers with their host, pid, heartbeat age, concurrency and task types. A worker whose heartbeat
is older than --stale-after is marked stale: it has died or hangs, and its tasks go back to the queue
when their leases expire. A worker that stops normally removes itself; one that was killed cannot.

Options:
  --stale-after <duration>  A worker is stale after this long without a heartbeat (default ${STALE_AFTER_DEFAULT})
  --prune                   Remove the stale workers' rows (their tasks are unaffected)
${COMMON_HELP}`;

export interface WorkerView extends WorkerInfo {
  heartbeatAgeMs: number;
  stale: boolean;
}

export function describeWorkers(workers: WorkerInfo[], now: number, staleAfterMs: number): WorkerView[] {
  return workers.map((worker) => {
    const heartbeatAgeMs = Math.max(0, now - worker.heartbeatAt);
    return { ...worker, heartbeatAgeMs, stale: heartbeatAgeMs > staleAfterMs };
  });
}

export const workersCommand: Command = {
  name: "workers",
  summary: "List workers and their heartbeats",
  help: HELP,
  async run(argv, { io }) {
    const { values, positionals } = parseCommand("workers", argv, {
      ...COMMON_OPTIONS,
      "stale-after": { type: "string" },
      prune: { type: "boolean", default: false },
    });
    expectArguments(positionals, 0);
    const staleAfterMs = parseDuration("--stale-after", values["stale-after"] ?? STALE_AFTER_DEFAULT);
    if (values.prune) {
      const pruned = await withQueue(io, values, (queue) => queue.pruneWorkers({ staleAfterMs }));
      if (values.json) io.stdout.write(json({ pruned }));
      else io.stdout.write(`Removed ${pruned.length} stale worker${pruned.length === 1 ? "" : "s"}.\n`);
      return 0;
    }
    const registered = await withQueue(io, values, (queue) => queue.workers());
    const workers = describeWorkers(registered, Date.now(), staleAfterMs);
    if (values.json) {
      io.stdout.write(json(workers));
      return 0;
    }
    if (workers.length === 0) {
      io.stdout.write("No workers are registered. Start one with 'prismq run'.\n");
      return 0;
    }
    const style = styleFor(io.stdout, io);
    const rows = workers.map((w) => [
      w.id,
      w.host ?? "-",
      w.pid === null ? "-" : String(w.pid),
      formatTime(w.startedAt),
      `${formatDuration(w.heartbeatAgeMs)} ago`,
      w.stale ? style.red("stale") : style.green("live"),
      String(w.concurrency),
      w.handlerTypes.join(",") || "-",
    ]);
    io.stdout.write(
      table(["ID", "HOST", "PID", "STARTED", "HEARTBEAT", "STATE", "CONCURRENCY", "TYPES"], rows, style, [
        2,
        6,
      ]),
    );
    return 0;
  },
};
